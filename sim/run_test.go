package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	url    string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRun runs Run in-process on a free port with time scale 0 (plus env)
// and stops it at the end of the test, requiring a clean exit unless the
// test consumed the result itself.
func startRun(t *testing.T, env map[string]string, args ...string) *testServer {
	t.Helper()
	port := freePort(t)
	vars := map[string]string{EnvTimeScale: "0", EnvSeed: "1", EnvNoise: "0"}
	for k, v := range env {
		vars[k] = v
	}
	argv := append([]string{"--model-path", "meta-llama/Llama-3.1-8B-Instruct"}, args...)
	argv = append(argv, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		ts.done <- Run(ctx, argv, func(k string) string { return vars[k] }, io.Discard, ts.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return ts
}

func (ts *testServer) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(ts.url + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealthy polls /health_generate like the runner; it records every status seen.
func (ts *testServer) waitHealthy(t *testing.T, timeout time.Duration) []int {
	t.Helper()
	var seen []int
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		code := ts.status(t, "/health_generate")
		if code == 0 { // not listening yet
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if len(seen) == 0 || seen[len(seen)-1] != code {
			seen = append(seen, code)
		}
		if code == http.StatusOK {
			return seen
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not healthy after %v (saw %v); log:\n%s", timeout, seen, ts.stderr.String())
	return nil
}

// sseEvents reads "data: ..." events until [DONE]. It reports problems
// with t.Errorf (it also runs on non-test goroutines) and returns nil.
func sseEvents(t *testing.T, resp *http.Response) []string {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
		return nil
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	blank := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			blank = true
			continue
		}
		if !blank || !strings.HasPrefix(line, "data: ") {
			t.Errorf("bad SSE framing at %q", line)
			return nil
		}
		blank = false
		ev := strings.TrimPrefix(line, "data: ")
		events = append(events, ev)
		if ev == "[DONE]" {
			return events
		}
	}
	t.Errorf("stream ended without [DONE]: %v", events)
	return nil
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRun_servesLikeSGLang(t *testing.T) {
	ts := startRun(t, map[string]string{EnvFault: FaultSlowStart, EnvFaultSeconds: "0.3", EnvCUDADevices: "0,1"}, "--tp-size", "2")
	seen := ts.waitHealthy(t, 5*time.Second)
	if len(seen) < 2 || seen[0] != http.StatusServiceUnavailable {
		t.Fatalf("health sequence %v, want 503 then 200", seen)
	}

	t.Run("generate stream", func(t *testing.T) {
		resp := post(t, ts.url+"/generate", `{"input_ids":[1,2,3,4,5,6,7],"sampling_params":{"max_new_tokens":8,"ignore_eos":true,"temperature":0},"stream":true}`)
		events := sseEvents(t, resp)
		// One chunk per decode step, but a step whose chunk is still being
		// written when the next ends is merged into it (as SGLang's detokenizer
		// does when it falls behind): 1..8 chunks, cumulative, then [DONE].
		n := len(events) - 1
		if n < 1 || n > 8 || events[n] != "[DONE]" {
			t.Fatalf("want 1-8 chunks + [DONE], got %d: %v", len(events), events)
		}
		var prevIDs []int
		for i, ev := range events[:n] {
			var c struct {
				Text      string `json:"text"`
				OutputIDs []int  `json:"output_ids"`
				Meta      struct {
					ID               string          `json:"id"`
					FinishReason     json.RawMessage `json:"finish_reason"`
					PromptTokens     int             `json:"prompt_tokens"`
					CompletionTokens int             `json:"completion_tokens"`
					CachedTokens     *int            `json:"cached_tokens"`
					E2ELatency       *float64        `json:"e2e_latency"`
				} `json:"meta_info"`
			}
			if err := json.Unmarshal([]byte(ev), &c); err != nil {
				t.Fatalf("chunk %d: %v: %s", i, err, ev)
			}
			if len(c.OutputIDs) <= len(prevIDs) || c.Meta.CompletionTokens != len(c.OutputIDs) || c.Meta.PromptTokens != 7 || c.Meta.ID == "" || c.Meta.CachedTokens == nil {
				t.Fatalf("chunk %d not cumulative: %s", i, ev)
			}
			for j := range prevIDs {
				if prevIDs[j] != c.OutputIDs[j] {
					t.Fatalf("chunk %d rewrote earlier ids", i)
				}
			}
			prevIDs = c.OutputIDs
			last := i == n-1
			if last && len(c.OutputIDs) != 8 {
				t.Fatalf("last chunk has %d tokens, want 8", len(c.OutputIDs))
			}
			if got := string(c.Meta.FinishReason); (got == "null") == last {
				t.Fatalf("chunk %d finish_reason %s", i, got)
			}
			if last && (string(c.Meta.FinishReason) != `{"type":"length","length":8}` || c.Meta.E2ELatency == nil) {
				t.Fatalf("last chunk %s", ev)
			}
		}
	})

	t.Run("completions stream with usage", func(t *testing.T) {
		resp := post(t, ts.url+"/v1/completions", `{"model":"m","prompt":[5,6,7],"max_tokens":4,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`)
		events := sseEvents(t, resp)
		n := len(events) - 2 // deltas, then the usage chunk and [DONE]
		if n < 1 || n > 4 {
			t.Fatalf("want 1-4 deltas + usage + [DONE], got %v", events)
		}
		var last, usage struct {
			Object  string `json:"object"`
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
				TotalTokens      int `json:"total_tokens"`
			} `json:"usage"`
		}
		_ = json.Unmarshal([]byte(events[n-1]), &last)
		_ = json.Unmarshal([]byte(events[n]), &usage)
		if last.Object != "text_completion" || len(last.Choices) != 1 || last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != "length" {
			t.Fatalf("last delta %s", events[n-1])
		}
		if len(usage.Choices) != 0 || usage.Usage == nil || usage.Usage.CompletionTokens != 4 || usage.Usage.PromptTokens != 3 || usage.Usage.TotalTokens != 7 {
			t.Fatalf("usage chunk %s", events[n])
		}
	})

	t.Run("non-stream and errors", func(t *testing.T) {
		resp := post(t, ts.url+"/generate", `{"text":"The capital city of France is","sampling_params":{"max_new_tokens":3,"ignore_eos":true}}`)
		var out struct {
			OutputIDs []int `json:"output_ids"`
			Meta      struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"meta_info"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.OutputIDs) != 3 || out.Meta.CompletionTokens != 3 {
			t.Fatalf("status %d err %v out %+v", resp.StatusCode, err, out)
		}
		resp.Body.Close()
		for _, body := range []string{`{"sampling_params":{}}`, `{"input_ids":[1],"sampling_params":{"temperature":-1}}`,
			`{"input_ids":[1],"sampling_params":{"max_new_tokens":200000}}`} {
			resp := post(t, ts.url+"/generate", body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400", body, resp.StatusCode)
			}
		}
		resp = post(t, ts.url+"/v1/completions", `{"prompt":""}`)
		var e struct{ Object, Message string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Object != "error" || e.Message == "" {
			t.Fatalf("status %d body %+v", resp.StatusCode, e)
		}
	})

	t.Run("info endpoints", func(t *testing.T) {
		resp, err := http.Get(ts.url + "/get_server_info")
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if info["tp_size"] != 2.0 || info["attention_backend"] != "fa3" || info["chunked_prefill_size"] != 8192.0 ||
			info["max_total_num_tokens"] == nil || info["version"] != Version || info["internal_states"] == nil {
			t.Fatalf("server info %v", info)
		}
		for _, p := range []string{"/get_model_info", "/v1/models", "/sim/info"} {
			if code := ts.status(t, p); code != 200 {
				t.Fatalf("%s: %d", p, code)
			}
		}
		resp, _ = http.Get(ts.url + "/sim/timings")
		var timings []Timing
		_ = json.NewDecoder(resp.Body).Decode(&timings)
		resp.Body.Close()
		if len(timings) < 3 {
			t.Fatalf("timings %v", timings)
		}
		for _, tm := range timings {
			if tm.FirstTokenUnixNano < tm.ArrivalUnixNano || tm.FinishUnixNano < tm.FirstTokenUnixNano || tm.CompletionTokens == 0 {
				t.Fatalf("timing %+v", tm)
			}
		}
	})

	if log := ts.stderr.String(); !strings.Contains(log, "The server is fired up and ready to roll!") || !strings.Contains(log, "server_args=ServerArgs(") {
		t.Fatalf("log lacks SGLang lines:\n%s", log)
	}
}

func TestRun_decodeTimingFollowsModel(t *testing.T) {
	ts := startRun(t, nil)
	ts.waitHealthy(t, 5*time.Second)
	start := time.Now()
	resp := post(t, ts.url+"/generate", `{"input_ids":[1,2,3],"sampling_params":{"max_new_tokens":20,"ignore_eos":true},"stream":true}`)
	sseEvents(t, resp)
	// 8B on H100: ~7 ms per decode step -> ~140 ms for 20 tokens.
	if el := time.Since(start); el < 100*time.Millisecond || el > 600*time.Millisecond {
		t.Fatalf("20 tokens took %v, want ~140 ms", el)
	}
}

func TestRun_faults(t *testing.T) {
	t.Run("crash at start", func(t *testing.T) {
		ts := startRun(t, map[string]string{EnvFault: FaultCrashAtStart})
		select {
		case err := <-ts.done:
			if ExitCode(err) != 1 || !strings.Contains(ts.stderr.String(), "Traceback (most recent call last)") {
				t.Fatalf("err %v, log:\n%s", err, ts.stderr.String())
			}
			ts.done <- err // for cleanup
		case <-time.After(5 * time.Second):
			t.Fatal("did not crash")
		}
	})
	t.Run("never healthy", func(t *testing.T) {
		ts := startRun(t, map[string]string{EnvFault: FaultNeverHealthy})
		time.Sleep(100 * time.Millisecond)
		for range 3 {
			if code := ts.status(t, "/health_generate"); code != http.StatusServiceUnavailable {
				t.Fatalf("health %d", code)
			}
		}
	})
	t.Run("oom under load", func(t *testing.T) {
		ts := startRun(t, map[string]string{EnvFault: FaultOOMUnderLoad, EnvFaultAfter: "2"})
		ts.waitHealthy(t, 5*time.Second)
		for range 2 {
			resp, err := http.Post(ts.url+"/generate", "application/json", strings.NewReader(`{"input_ids":[1],"sampling_params":{"max_new_tokens":2}}`))
			if err == nil {
				resp.Body.Close()
			}
		}
		select {
		case err := <-ts.done:
			if ExitCode(err) != 1 || !strings.Contains(ts.stderr.String(), "torch.OutOfMemoryError: CUDA out of memory") {
				t.Fatalf("err %v, log:\n%s", err, ts.stderr.String())
			}
			ts.done <- err
		case <-time.After(5 * time.Second):
			t.Fatal("did not die")
		}
	})
}

func TestRun_launchFailures(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		args         []string
		expectedCode int
		expectedLog  string
	}{
		{"unknown flag", nil, []string{"--foo"}, 2, "sglang-sim: error: unrecognized arguments: --foo"},
		{"fa4 decode on Hopper", nil, []string{"--attention-backend", "fa4"}, 1, "ValueError: FA4 backend is only supported for prefill"},
		{"70B on one GPU", nil, []string{"--model-path", "meta-llama/Llama-3.1-70B-Instruct"}, 1, "torch.OutOfMemoryError"},
		{"too few GPUs", map[string]string{EnvCUDADevices: "0"}, []string{"--tp-size", "2"}, 1, "invalid device ordinal"},
		{"fa3 MLA on A100", map[string]string{EnvGPU: "A100-80G"}, []string{"--model-path", "deepseek-ai/DeepSeek-V2-Lite", "--attention-backend", "fa3"}, 1, "AssertionError: FlashAttention v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startRun(t, tt.env, tt.args...)
			select {
			case err := <-ts.done:
				if ExitCode(err) != tt.expectedCode || !strings.Contains(ts.stderr.String(), tt.expectedLog) {
					t.Fatalf("exit %d err %v, log:\n%s", ExitCode(err), err, ts.stderr.String())
				}
				ts.done <- err
			case <-time.After(5 * time.Second):
				t.Fatal("did not fail")
			}
		})
	}
}

func TestRun_gracefulShutdownMidStream(t *testing.T) {
	ts := startRun(t, nil)
	ts.waitHealthy(t, 5*time.Second)
	resp := post(t, ts.url+"/generate", `{"input_ids":[1],"sampling_params":{"max_new_tokens":100000,"ignore_eos":true},"stream":true}`)
	defer resp.Body.Close()
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
		ts.done <- err
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown hung")
	}
}

func TestRun_dataParallelWithAPIKey(t *testing.T) {
	ts := startRun(t, map[string]string{EnvCUDADevices: "0,1"}, "--dp-size", "2", "--api-key", "sk-test")
	ts.waitHealthy(t, 5*time.Second) // /health* needs no key
	if code := ts.status(t, "/get_server_info"); code != http.StatusUnauthorized {
		t.Fatalf("server info without key: %d", code)
	}
	get := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		req.Header.Set("Authorization", "Bearer sk-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/get_server_info")
	var info struct {
		DPSize         int   `json:"dp_size"`
		InternalStates []any `json:"internal_states"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.DPSize != 2 || len(info.InternalStates) != 2 {
		t.Fatalf("info %+v", info)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, ts.url+"/generate", strings.NewReader(`{"input_ids":[1,2],"sampling_params":{"max_new_tokens":4,"ignore_eos":true},"stream":true}`))
			req.Header.Set("Authorization", "Bearer sk-test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			// 1-4 cumulative chunks (a step whose chunk is still being
			// written when the next ends is merged into it, as in SGLang),
			// the last with all 4 tokens, then [DONE].
			events := sseEvents(t, resp)
			n := len(events) - 1
			if n < 1 || n > 4 || events[n] != "[DONE]" {
				t.Errorf("want 1-4 chunks + [DONE], got %v", events)
				return
			}
			var last generateEvent
			if err := json.Unmarshal([]byte(events[n-1]), &last); err != nil || len(last.OutputIDs) != 4 ||
				last.Meta.CompletionTokens != 4 || string(last.Meta.FinishReason) != `{"type":"length","length":4}` {
				t.Errorf("last chunk %s (%v)", events[n-1], err)
			}
		}()
	}
	wg.Wait()
}
