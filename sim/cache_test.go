package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTokenize_prefixStable(t *testing.T) {
	const vocab = 128256
	sys := "You are a helpful assistant. Answer briefly and cite sources.\n\n"
	a, b := tokenize(sys+"What is the capital of France?", vocab), tokenize(sys+"Who wrote Hamlet?", vocab)
	// All but the last token: the trailing whitespace merges with the next
	// word, as it would in a BPE tokenizer.
	s := tokenize(sys, vocab)
	s = s[:len(s)-1]
	if !slices.Equal(a[:len(s)], s) || !slices.Equal(b[:len(s)], s) {
		t.Fatalf("prompts sharing a system prompt do not share its tokens:\n%v\n%v\n%v", s, a, b)
	}
	if slices.Equal(a, b) || !slices.Equal(a, tokenize(sys+"What is the capital of France?", vocab)) {
		t.Fatal("tokenize is not a deterministic function of the text")
	}
	for _, tok := range a {
		if tok < 0 || tok >= vocab {
			t.Fatalf("token %d outside the vocabulary", tok)
		}
	}
	// About 4 characters a token, as the length estimate was before.
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 50)
	if n := len(tokenize(text, vocab)); n < len(text)/6 || n > len(text)/3 {
		t.Fatalf("%d tokens for %d characters", n, len(text))
	}
	if n := len(tokenize("", vocab)); n != 1 {
		t.Fatalf("empty text: %d tokens, want 1 (BOS)", n)
	}
}

// streamGenerate sends one streaming /generate request and returns the last
// chunk's meta_info.cached_tokens and prompt_tokens.
func streamGenerate(t *testing.T, url, input string) (cached, prompt int) {
	t.Helper()
	resp, err := http.Post(url+"/generate", "application/json", strings.NewReader(input))
	if err != nil {
		t.Errorf("POST /generate: %v", err)
		return 0, 0
	}
	events := sseEvents(t, resp)
	if len(events) < 2 {
		return 0, 0
	}
	var c generateEvent
	if err := json.Unmarshal([]byte(events[len(events)-2]), &c); err != nil || c.Meta.CachedTokens == nil {
		t.Errorf("last chunk %s: %v", events[len(events)-2], err)
		return 0, 0
	}
	return *c.Meta.CachedTokens, c.Meta.PromptTokens
}

func TestRun_prefixCacheReportsCachedTokens(t *testing.T) {
	ts := startRun(t, nil, "--page-size", "16", "--enable-cache-report")
	ts.waitHealthy(t, 5*time.Second)
	sys := strings.Repeat("You are a careful assistant who answers in one sentence. ", 20)
	gen := func(q string) string {
		b, _ := json.Marshal(map[string]any{"text": sys + q, "stream": true,
			"sampling_params": map[string]any{"max_new_tokens": 4, "ignore_eos": true}})
		return string(b)
	}
	if c, _ := streamGenerate(t, ts.url, gen("What is the capital of France?")); c != 0 {
		t.Fatalf("first request: cached_tokens %d, want 0", c)
	}
	sysTokens := len(tokenize(sys, 128256)) // sys ends in a space: its last token is " " + the question's first word
	c, p := streamGenerate(t, ts.url, gen("Who wrote Hamlet?"))
	if want := sysTokens / 16 * 16; c != want || p <= c {
		t.Fatalf("text prompt sharing the system prompt: cached_tokens %d of %d, want %d (%d system tokens, page 16)", c, p, want, sysTokens)
	}

	ids := make([]int, 300)
	for i := range ids {
		ids[i] = 1000 + i
	}
	idsBody := func(extra ...int) string {
		b, _ := json.Marshal(map[string]any{"input_ids": append(slices.Clone(ids), extra...), "stream": true,
			"sampling_params": map[string]any{"max_new_tokens": 2, "ignore_eos": true}})
		return string(b)
	}
	streamGenerate(t, ts.url, idsBody(7, 8, 9))
	if c, _ := streamGenerate(t, ts.url, idsBody(5)); c != 288 {
		t.Fatalf("input_ids sharing 300 tokens: cached_tokens %d, want 288 (whole pages of 16)", c)
	}

	// /v1/completions reports the hits in usage with --enable-cache-report.
	body, _ := json.Marshal(map[string]any{"prompt": sys + "Name a prime number.", "max_tokens": 2, "ignore_eos": true})
	resp := post(t, ts.url+"/v1/completions", string(body))
	var out struct {
		Usage struct {
			PromptTokens        int `json:"prompt_tokens"`
			PromptTokensDetails *struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	err := json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || out.Usage.PromptTokensDetails == nil || out.Usage.PromptTokensDetails.CachedTokens != sysTokens/16*16 {
		t.Fatalf("completion usage %+v (%v), want %d cached", out.Usage, err, sysTokens/16*16)
	}

	// /flush_cache empties it; the next request misses.
	resp = post(t, ts.url+"/flush_cache", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("flush_cache on an idle server: %d", resp.StatusCode)
	}
	if c, _ := streamGenerate(t, ts.url, gen("Who wrote Hamlet?")); c != 0 {
		t.Fatalf("after flush_cache: cached_tokens %d, want 0", c)
	}
	if !strings.Contains(ts.stderr.String(), "#cached-token: 288,") {
		t.Fatalf("log lacks the prefill line with #cached-token: 288")
	}
}

// gspPrompts is bench_serving's generated-shared-prefix dataset as token
// ids: groups x perGroup prompts of a group's system prompt and a question,
// shuffled.
func gspPrompts(rng *rand.Rand, groups, perGroup, system, question int) [][]int {
	ids := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = rng.IntN(120000)
		}
		return out
	}
	var out [][]int
	for range groups {
		sys := ids(system)
		for range perGroup {
			out = append(out, append(slices.Clone(sys), ids(question)...))
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestRun_lpmBeatsFCFSOnSharedPrefixes is the radix-cache target through
// HTTP: 8 groups of 8 prompts share 512-token system prompts that do not all
// fit in the KV cache (3,072 tokens); with 32 requests in flight, lpm (which
// admits requests whose prefix is cached first, and holds back all but one
// of a group whose prefix is not) keeps the prefixes it needs and cuts mean
// TTFT, while fcfs evicts them before their reuse. On random ids of the same
// length nothing is shared and lpm wins nothing.
func TestRun_lpmBeatsFCFSOnSharedPrefixes(t *testing.T) {
	servers := map[string]*testServer{}
	for _, policy := range []string{"fcfs", "lpm"} {
		servers[policy] = startRun(t, nil, "--model-path", "meta-llama/Llama-3.2-3B-Instruct", "--max-total-tokens", "3072", "--schedule-policy", policy)
	}
	for _, ts := range servers {
		ts.waitHealthy(t, 5*time.Second)
	}
	shared := gspPrompts(rand.New(rand.NewPCG(1, 2)), 8, 8, 512, 32)
	random := gspPrompts(rand.New(rand.NewPCG(3, 4)), 64, 1, 512, 32)
	type result struct{ ttft, hit float64 }
	// The server runs in real time on a shared machine: a run slowed by other
	// processes is measured again (the two policies back to back, so that
	// both see the same load), up to three times.
	var failures []string
	for attempt := range 3 {
		got := map[string]result{}
		for _, name := range []string{"shared", "random"} {
			prompts := map[string][][]int{"shared": shared, "random": random}[name]
			for _, policy := range []string{"fcfs", "lpm"} {
				ts := servers[policy]
				if resp, err := http.Post(ts.url+"/flush_cache", "", nil); err == nil {
					resp.Body.Close()
				}
				st := bench(t, ts.url, prompts, 32, 16)
				got[policy+"/"+name] = result{st.meanTTFT, st.hitRate}
			}
		}
		t.Logf("attempt %d: %+v", attempt+1, got)
		failures = failures[:0]
		f, l := got["fcfs/shared"], got["lpm/shared"]
		if l.ttft > 0.8*f.ttft || l.hit <= f.hit {
			failures = append(failures, fmt.Sprintf("shared prefixes: lpm TTFT %.0f ms (hit %.2f) vs fcfs %.0f ms (hit %.2f): lpm must win", l.ttft, l.hit, f.ttft, f.hit))
		}
		rf, rl := got["fcfs/random"], got["lpm/random"]
		if rl.ttft < 0.9*rf.ttft || rl.hit > 0.01 || rf.hit > 0.01 {
			failures = append(failures, fmt.Sprintf("random ids: lpm TTFT %.0f ms vs fcfs %.0f ms (hits %.3f, %.3f): lpm must not win", rl.ttft, rf.ttft, rl.hit, rf.hit))
		}
		if f.ttft > 0.9*rf.ttft {
			failures = append(failures, fmt.Sprintf("the cache does not help fcfs on shared prefixes: %.0f ms vs %.0f ms on random ids", f.ttft, rf.ttft))
		}
		if len(failures) == 0 {
			return
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
}
