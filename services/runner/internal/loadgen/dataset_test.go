package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mooncakeWorkload(path string) events.Workload {
	return events.Workload{Backend: "sglang", Dataset: DatasetMooncake, DatasetPath: path, NumPrompts: 100,
		MooncakeSlowdownFactor: 1, Seed: 1, IgnoreEOS: true, VocabSize: 32000}
}

func TestMooncake_shared_hash_ids_share_their_blocks(t *testing.T) {
	t.Parallel()
	trace := writeTemp(t, "trace.jsonl", `{"timestamp": 0, "input_length": 1000, "output_length": 20, "hash_ids": [0, 1]}
{"timestamp": 100, "input_length": 700, "output_length": 10, "hash_ids": [0, 2]}

{"timestamp": 50, "input_length": 100, "output_length": 5, "hash_ids": [3]}
{"timestamp": 3000, "input_length": 600, "output_length": 5}
`)
	w := mooncakeWorkload(trace)
	w.MooncakeSlowdownFactor = 2
	ds, err := OpenDataset(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ds.Timed() {
		t.Fatal("a trace carries its own arrival times")
	}
	ps, err := ds.Prompts(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by timestamp: 0, 50, 100, 3000 ms, times the slowdown factor.
	wantArrival := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 6 * time.Second}
	wantLen := []int{1000, 100, 700, 600}
	for i, p := range ps {
		if p.Arrival != wantArrival[i] || len(p.InputIDs) != wantLen[i] {
			t.Fatalf("prompt %d: arrival %v, %d tokens; want %v, %d", i, p.Arrival, len(p.InputIDs), wantArrival[i], wantLen[i])
		}
	}
	a, b, c := ps[0].InputIDs, ps[2].InputIDs, ps[1].InputIDs
	if !slices.Equal(a[:MooncakeBlockTokens], b[:MooncakeBlockTokens]) {
		t.Fatal("hash id 0 is not the same 512 tokens in both requests")
	}
	if slices.Equal(a[MooncakeBlockTokens:MooncakeBlockTokens+100], b[MooncakeBlockTokens:MooncakeBlockTokens+100]) {
		t.Fatal("hash ids 1 and 2 gave the same tokens")
	}
	if slices.Equal(c, a[:100]) {
		t.Fatal("hash id 3 gave hash id 0's tokens")
	}
	// Another seed (the next level of a ladder): new tokens, the same sharing.
	qs, _ := ds.Prompts(0, 2)
	if slices.Equal(qs[0].InputIDs[:10], a[:10]) || !slices.Equal(qs[0].InputIDs[:MooncakeBlockTokens], qs[2].InputIDs[:MooncakeBlockTokens]) {
		t.Fatal("a new seed must change the blocks and keep their sharing")
	}
	// --num-prompts takes the first N records of the file.
	w.NumPrompts = 2
	ds, _ = OpenDataset(w, nil)
	ps, _ = ds.Prompts(0, 1)
	if len(ps) != 2 || len(ps[1].InputIDs) != 700 {
		t.Fatalf("first 2 records: %d prompts", len(ps))
	}
}

func TestDataset_bad_input_names_the_file_line_and_field(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, givenFile, givenContent string
		givenDataset                  string
		expected                      []string
	}{
		{"trace line not JSON", "t.jsonl", "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5}\nnot json\n", DatasetMooncake, []string{"t.jsonl", "line 2", "not a JSON object"}},
		{"negative timestamp", "t.jsonl", `{"timestamp": -4, "input_length": 5, "output_length": 5}`, DatasetMooncake, []string{"line 1", "timestamp", "negative"}},
		{"absurd timestamp", "t.jsonl", "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5}\n{\"timestamp\": 1733140000000, \"input_length\": 5, \"output_length\": 5}", DatasetMooncake, []string{"line 2", "timestamp", "epoch"}},
		{"missing input_length", "t.jsonl", `{"timestamp": 0, "output_length": 5, "hash_ids": [1]}`, DatasetMooncake, []string{"line 1", "input_length", "missing"}},
		{"input_length a string", "t.jsonl", `{"timestamp": 0, "input_length": "5", "output_length": 5}`, DatasetMooncake, []string{"line 1", "input_length"}},
		{"missing output_length", "t.jsonl", `{"timestamp": 0, "input_length": 5}`, DatasetMooncake, []string{"line 1", "output_length", "missing"}},
		{"missing timestamp", "t.jsonl", `{"input_length": 5, "output_length": 5}`, DatasetMooncake, []string{"line 1", "timestamp", "missing"}},
		{"negative hash id", "t.jsonl", `{"timestamp": 0, "input_length": 5, "output_length": 5, "hash_ids": [0, -1]}`, DatasetMooncake, []string{"line 1", "hash_ids[1]"}},
		{"empty trace", "t.jsonl", "\n\n", DatasetMooncake, []string{"t.jsonl", "no records"}},
		{"sharegpt without a human turn", "sg.json", "[\n {\"conversations\": [{\"from\": \"gpt\", \"value\": \"hello\"},\n   {\"from\": \"gpt\", \"value\": \"again\"}]}\n]", DatasetShareGPT, []string{"sg.json", "line 2", "conversations", "human"}},
		{"sharegpt not an array", "sg.json", `{"conversations": []}`, DatasetShareGPT, []string{"sg.json", "line 1", "JSON array"}},
		{"sharegpt cut short", "sg.json", "[{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}", DatasetShareGPT, []string{"sg.json", "cut short"}},
		{"sharegpt wrong type", "sg.json", "[\n{\"conversations\": \"hi\"}]", DatasetShareGPT, []string{"sg.json", "line 2", "conversations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeTemp(t, tt.givenFile, tt.givenContent)
			w := mooncakeWorkload(path)
			w.Dataset = tt.givenDataset
			// Nothing is sent: the file is read before the first request.
			s := &sseServer{}
			url := startSSE(t, s)
			_, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
			if !errors.Is(err, ErrBadWorkload) {
				t.Fatalf("err = %v, want ErrBadWorkload", err)
			}
			for _, want := range tt.expected {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if s.requests.Load()+s.probes.Load() != 0 || s.conns.Load() != 0 {
				t.Fatalf("the server was contacted (%d requests, %d connections)", s.requests.Load()+s.probes.Load(), s.conns.Load())
			}
		})
	}
	// A group of no prompts.
	w := baseWorkload()
	w.Dataset, w.GSPNumGroups, w.GSPPromptsPerGroup, w.GSPSystemPromptLen, w.GSPQuestionLen, w.GSPOutputLen = DatasetSharedPrefix, 2, 0, 8, 4, 4
	if _, err := OpenDataset(w, nil); !errors.Is(err, ErrBadWorkload) || !strings.Contains(err.Error(), "gsp_prompts_per_group") {
		t.Fatalf("group size 0: %v", err)
	}
}

func TestSharedPrefix_groups_share_their_system_prompt(t *testing.T) {
	t.Parallel()
	w := baseWorkload()
	w.Dataset, w.GSPNumGroups, w.GSPPromptsPerGroup, w.GSPSystemPromptLen, w.GSPQuestionLen, w.GSPOutputLen = DatasetSharedPrefix, 3, 4, 10, 5, 7
	ds, err := OpenDataset(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ds.Prompts(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 12 {
		t.Fatalf("%d prompts, want groups × prompts per group = 12 (num_prompts is not used)", len(ps))
	}
	groups := map[string]int{}
	var order []string
	for _, p := range ps {
		if len(p.InputIDs) != 15 || p.OutputLen != 7 {
			t.Fatalf("prompt of %d tokens asking %d", len(p.InputIDs), p.OutputLen)
		}
		key := fmt.Sprint(p.InputIDs[:10])
		groups[key]++
		order = append(order, key)
	}
	if len(groups) != 3 {
		t.Fatalf("%d distinct system prompts, want 3", len(groups))
	}
	for k, n := range groups {
		if n != 4 {
			t.Fatalf("system prompt %s shared by %d prompts, want 4", k, n)
		}
	}
	if order[0] == order[1] && order[1] == order[2] && order[2] == order[3] {
		t.Fatal("the groups' prompts are not shuffled together")
	}
}

func TestShareGPT_first_human_turn_and_the_replys_length(t *testing.T) {
	t.Parallel()
	file := writeTemp(t, "sg.json", `[
  {"id": "a", "conversations": [{"from": "human", "value": "What is a GPU, in one sentence please?"},
                                {"from": "gpt", "value": "A processor built for many parallel arithmetic operations at once."}]},
  {"id": "b", "conversations": [{"from": "gpt", "value": "unprompted"}, {"from": "gpt", "value": "twice"}]},
  {"id": "c", "conversations": [{"from": "human", "value": "only a question, no reply"}]},
  {"id": "d", "conversation": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "Name a fast serving engine for LLMs."},
                               {"from": "gpt", "value": "SGLang serves LLMs with RadixAttention."}]}
]`)
	w := baseWorkload()
	w.Dataset, w.DatasetPath = DatasetShareGPT, file
	ds, err := OpenDataset(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ds.Prompts(10, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range ps {
		if p.InputIDs != nil {
			t.Fatal("ShareGPT prompts are text")
		}
		got[p.Text] = p.OutputLen
	}
	want := map[string]int{
		"What is a GPU, in one sentence please?": estimateTokens("A processor built for many parallel arithmetic operations at once."),
		"Name a fast serving engine for LLMs.":   estimateTokens("SGLang serves LLMs with RadixAttention."),
	}
	if len(got) != len(want) {
		t.Fatalf("prompts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("prompts %v, want %v", got, want)
		}
	}
	w.SharegptOutputLen = 64
	ds, _ = OpenDataset(w, nil)
	ps, _ = ds.Prompts(1, 1)
	if len(ps) != 1 || ps[0].OutputLen != 64 {
		t.Fatalf("--sharegpt-output-len: %+v", ps)
	}
}

func TestRun_replays_a_trace_at_its_arrival_times(t *testing.T) {
	t.Parallel()
	trace := writeTemp(t, "trace.jsonl", `{"timestamp": 0, "input_length": 600, "output_length": 3, "hash_ids": [7, 8]}
{"timestamp": 40, "input_length": 520, "output_length": 3, "hash_ids": [7, 9]}
{"timestamp": 80, "input_length": 100, "output_length": 3, "hash_ids": [10]}
{"timestamp": 120, "input_length": 600, "output_length": 3, "hash_ids": [7, 8]}
`)
	s := &sseServer{itl: time.Millisecond}
	url := startSSE(t, s)
	w := mooncakeWorkload(trace)
	w.WarmupRequests = 1
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics["completed"] != 4 {
		t.Fatalf("completed %v: %s", res.Metrics["completed"], res.FirstError())
	}
	// The replay cannot run ahead of the trace (its last request is sent
	// 120 ms after the first), and the server saw the requests in trace order.
	if res.Duration < 120*time.Millisecond {
		t.Fatalf("replayed 120 ms of trace in %v", res.Duration)
	}
	s.mu.Lock()
	lens := slices.Clone(s.inLens)
	s.mu.Unlock()
	if !slices.Equal(lens[len(lens)-4:], []int{600, 520, 100, 600}) {
		t.Fatalf("server saw input lengths %v in this order", lens)
	}
}
