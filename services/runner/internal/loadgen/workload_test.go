package loadgen

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
)

func TestLengthRange_like_bench_serving(t *testing.T) {
	t.Parallel()
	tests := []struct {
		givenLen         int
		givenRatio       float64
		expectedLo, exHi int
	}{
		{1024, 0, 1, 1024},
		{1024, 1, 1024, 1024},
		{100, 0.5, 50, 100},
		{3, 0.5, 1, 3},
		{1, 0.5, 1, 1},
		{0, 0.5, 1, 1},
	}
	for _, tt := range tests {
		lo, hi := LengthRange(tt.givenLen, tt.givenRatio)
		if lo != tt.expectedLo || hi != tt.exHi {
			t.Errorf("LengthRange(%d, %v) = [%d, %d], want [%d, %d]", tt.givenLen, tt.givenRatio, lo, hi, tt.expectedLo, tt.exHi)
		}
	}
}

func TestBuildRequests_seeded_and_in_range(t *testing.T) {
	t.Parallel()
	w := events.Workload{Backend: "sglang", Dataset: "random-ids", RandomInputLen: 100, RandomOutputLen: 40,
		RandomRangeRatio: 0.5, VocabSize: 1000, IgnoreEOS: true, RequestRate: 10}
	build := func(seed uint64) []request {
		ds, err := OpenDataset(w, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ds.Prompts(50, seed)
		if err != nil {
			t.Fatal(err)
		}
		reqs, err := buildRequests(w, "m", ps, ds.Timed(), seed, false)
		if err != nil {
			t.Fatal(err)
		}
		return reqs
	}
	a, b, c := build(7), build(7), build(8)
	same := true
	for i := range a {
		if string(a[i].body) != string(b[i].body) || a[i].arrival != b[i].arrival {
			t.Fatalf("request %d differs with the same seed", i)
		}
		if string(a[i].body) != string(c[i].body) {
			same = false
		}
		if a[i].inputLen < 50 || a[i].inputLen > 100 || a[i].outputLen < 20 || a[i].outputLen > 40 {
			t.Fatalf("request %d lengths %d/%d out of range", i, a[i].inputLen, a[i].outputLen)
		}
		if i > 0 && a[i].arrival < a[i-1].arrival {
			t.Fatal("arrivals not increasing")
		}
		var body struct {
			InputIDs       []int `json:"input_ids"`
			SamplingParams struct {
				MaxNewTokens int     `json:"max_new_tokens"`
				Temperature  float64 `json:"temperature"`
				IgnoreEOS    bool    `json:"ignore_eos"`
			} `json:"sampling_params"`
			Stream bool `json:"stream"`
		}
		if err := json.Unmarshal(a[i].body, &body); err != nil {
			t.Fatalf("body %d: %v: %s", i, err, a[i].body)
		}
		if len(body.InputIDs) != a[i].inputLen || body.SamplingParams.MaxNewTokens != a[i].outputLen ||
			!body.SamplingParams.IgnoreEOS || !body.Stream || slices.Min(body.InputIDs) < 1 || slices.Max(body.InputIDs) >= 1000 {
			t.Fatalf("body %d = %+v", i, body)
		}
	}
	if same {
		t.Fatal("another seed gave the same requests")
	}
}

func TestBuildRequests_openai_prompts(t *testing.T) {
	t.Parallel()
	w := events.Workload{Backend: "openai", Dataset: "prompts", RandomOutputLen: 8, RandomRangeRatio: 1}
	ds, err := OpenDataset(w, []string{`say "hi"`, "b"})
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ds.Prompts(3, 1)
	reqs, err := buildRequests(w, "llama", ps, false, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Model         string `json:"model"`
		Prompt        string `json:"prompt"`
		MaxTokens     int    `json:"max_tokens"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatalf("%v: %s", err, reqs[0].body)
	}
	if reqs[0].path != "/v1/completions" || body.Model != "llama" || body.Prompt == "" || body.MaxTokens != 8 || !body.Stream || !body.StreamOptions.IncludeUsage {
		t.Fatalf("body = %+v path %s", body, reqs[0].path)
	}
	if _, err := buildRequests(events.Workload{Backend: "trt"}, "", ps, false, 1, false); err == nil {
		t.Fatal("unknown backend accepted")
	}
}

func TestScanChunk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    string
		expected chunkInfo
	}{
		{name: "native", given: `{"text":"ab","meta_info":{"id":"x","prompt_tokens":12,"completion_tokens":3,"finish_reason":null}}`,
			expected: chunkInfo{completionTokens: 3, promptTokens: 12, cachedTokens: -1, hasText: true}},
		{name: "native finished with spaces", given: `{"text": "a\"completion_tokens\":9", "meta_info": {"completion_tokens" : 4, "finish_reason": {"type": "length"}}}`,
			expected: chunkInfo{completionTokens: 4, promptTokens: -1, cachedTokens: -1, hasText: true, finished: true}},
		{name: "openai delta", given: `{"choices":[{"index":0,"text":"y","finish_reason":null}],"usage":null}`,
			expected: chunkInfo{completionTokens: -1, promptTokens: -1, cachedTokens: -1, hasText: true}},
		{name: "openai empty delta", given: `{"choices":[{"index":0,"text":"","finish_reason":"length"}]}`,
			expected: chunkInfo{completionTokens: -1, promptTokens: -1, cachedTokens: -1, finished: true}},
		{name: "openai usage", given: `{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`,
			expected: chunkInfo{completionTokens: 7, promptTokens: 5, cachedTokens: -1}},
		{name: "error", given: `{"error": {"message": "boom"}}`,
			expected: chunkInfo{completionTokens: -1, promptTokens: -1, cachedTokens: -1, errMsg: "boom"}},
		{name: "abort", given: `{"text":"","meta_info":{"completion_tokens":0,"finish_reason":{"type":"abort","message":"oom"}}}`,
			expected: chunkInfo{completionTokens: 0, promptTokens: -1, cachedTokens: -1, finished: true, errMsg: "aborted: oom"}},
		{name: "native cached tokens", given: `{"text":"a","meta_info":{"prompt_tokens":600,"cached_tokens":512,"completion_tokens":1}}`,
			expected: chunkInfo{completionTokens: 1, promptTokens: 600, cachedTokens: 512, hasText: true}},
		{name: "openai cached tokens", given: `{"choices":[],"usage":{"prompt_tokens":600,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":256}}}`,
			expected: chunkInfo{completionTokens: 7, promptTokens: 600, cachedTokens: 256}},
		{name: "native empty text", given: `{"text":"","meta_info":{"completion_tokens":1}}`,
			expected: chunkInfo{completionTokens: 1, promptTokens: -1, cachedTokens: -1}},
		{name: "openai abort", given: `{"choices":[{"index":0,"text":"","finish_reason":"abort"}]}`,
			expected: chunkInfo{completionTokens: -1, promptTokens: -1, cachedTokens: -1, finished: true, errMsg: "aborted (finish_reason abort)"}},
		{name: "openai abort with text", given: `{"choices":[{"index":0,"text":"x","finish_reason":"abort"}]}`,
			expected: chunkInfo{completionTokens: -1, promptTokens: -1, cachedTokens: -1, hasText: true, finished: true, errMsg: "aborted (finish_reason abort)"}},
		{name: "the word abort in text is not an abort", given: `{"text":"say \"abort\"","meta_info":{"completion_tokens":2,"finish_reason":{"type":"length"}}}`,
			expected: chunkInfo{completionTokens: 2, promptTokens: -1, cachedTokens: -1, hasText: true, finished: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scanChunk([]byte(tt.given)); got != tt.expected {
				t.Fatalf("scanChunk = %+v, want %+v", got, tt.expected)
			}
		})
	}
}
