package trial

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
)

func TestRun_records_what_the_server_runs(t *testing.T) {
	t.Parallel()
	// The server runs chunked prefill at 8192 and a smaller static memory
	// fraction than asked, and picks the attention backend itself.
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_ADJUST": "chunked_prefill_size=8192,mem_fraction_static=0.8"})
	q := queued(7)
	q.Params = events.Params{"tp_size": 2.0, "chunked_prefill_size": 4096.0, "attention_backend": nil, "enable_mixed_chunk": false}
	q.ServerArgs = []string{"--model-path", "fake/model", "--tp-size", "2", "--chunked-prefill-size", "4096", "--mem-fraction-static", "0.85"}
	res, err := e.Run(context.Background(), q, []int{0, 1}, nil)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %s %s %s", err, res.State, res.FailureClass, res.Reason)
	}
	if res.SGLangVersion != fakeserver.FakeVersion || res.ModelPathLoaded != "fake/model" {
		t.Fatalf("version %q, model %q", res.SGLangVersion, res.ModelPathLoaded)
	}
	want := events.Params{"tp_size": 2.0, "chunked_prefill_size": 8192.0, "mem_fraction_static": 0.8, "attention_backend": "flashinfer"}
	for k, v := range want {
		if res.EffectiveParams[k] != v {
			t.Errorf("effective %s = %v, want %v (all: %v)", k, res.EffectiveParams[k], v, res.EffectiveParams)
		}
	}
	// Asked as None (attention_backend) is SGLang's choice, not an adjustment;
	// a tuned false that the server reports nothing for is not guessed.
	if !slices.Equal(res.AdjustedParams, []string{"chunked_prefill_size", "mem_fraction_static"}) {
		t.Fatalf("adjusted = %v", res.AdjustedParams)
	}
	if _, ok := res.EffectiveParams["enable_mixed_chunk"]; ok {
		t.Fatalf("a value the server did not report was invented: %v", res.EffectiveParams)
	}
}

func TestRun_bad_server_info_fails_before_the_benchmark(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenExtra    map[string]string
		expectedClass string
		expectedWords []string
	}{
		{name: "another model loaded", givenExtra: map[string]string{"SGTUNE_FAKE_LOADED_MODEL": "org/other-model"},
			expectedClass: events.FailWrongModel, expectedWords: []string{`"org/other-model"`, `"fake/model"`}},
		{name: "server info answers 500", givenExtra: map[string]string{"SGTUNE_FAKE_INFO": "http500"},
			expectedClass: events.FailServerInfo, expectedWords: []string{"/get_server_info answered 500", "scheduler is not responding"}},
		{name: "server info is not JSON", givenExtra: map[string]string{"SGTUNE_FAKE_INFO": "garbage"},
			expectedClass: events.FailServerInfo, expectedWords: []string{"/get_server_info", "not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExec(t, "healthy", tt.givenExtra)
			var p phases
			res, err := e.Run(context.Background(), queued(8), []int{0}, p.record)
			if err != nil {
				t.Fatal(err)
			}
			if res.State != events.StateFailed || res.FailureClass != tt.expectedClass {
				t.Fatalf("state %s class %q reason %q, want failed %q", res.State, res.FailureClass, res.Reason, tt.expectedClass)
			}
			for _, w := range tt.expectedWords {
				if !strings.Contains(res.Reason, w) {
					t.Errorf("reason %q lacks %q", res.Reason, w)
				}
			}
			if slices.Contains(p.got, events.PhaseBenchmarking) || res.Metrics["completed"] != 0 {
				t.Fatalf("benchmarked anyway: phases %v metrics %v", p.got, res.Metrics)
			}
		})
	}
}

func TestRun_server_info_with_an_api_key(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_API_KEY": "sk-1"})
	q := queued(9)
	q.ServerArgs = append(q.ServerArgs, "--api-key", "sk-1")
	res, err := e.Run(context.Background(), q, []int{0}, nil)
	if err != nil || res.State != events.StateComplete || res.SGLangVersion == "" {
		t.Fatalf("Run: %v %s %s %s", err, res.State, res.FailureClass, res.Reason)
	}
}

func TestSameModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		asked, loaded string
		expected      bool
	}{
		{"meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", true},
		{"meta-llama/Llama-3.1-8B-Instruct", "meta-llama/llama-3.1-8b-instruct", true},
		{"meta-llama/Llama-3.1-8B-Instruct", "/root/.cache/huggingface/hub/models--meta-llama--Llama-3.1-8B-Instruct/snapshots/0e9e39f2", true},
		{"meta-llama/Llama-3.1-8B-Instruct", "/root/.cache/huggingface/hub/models--meta-llama--Llama-3.1-70B-Instruct/snapshots/0e9e39f2", false},
		{"meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", false},
		{"/models/llama-8b/", "/models/llama-8b", true},
		{"/models/llama-8b", "/models/Llama-8B", false}, // local paths are case-sensitive
		{"/models/llama-8b", "/models/qwen-7b", false},
	}
	for _, tt := range tests {
		if got := sameModel(tt.asked, tt.loaded); got != tt.expected {
			t.Errorf("sameModel(%q, %q) = %v, want %v", tt.asked, tt.loaded, got, tt.expected)
		}
	}
}

func TestSameValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		asked    any
		got      any
		expected bool
	}{
		{"tp_size", 2, 2.0, true},
		{"mem_fraction_static", 0.85, 0.85, true},
		{"mem_fraction_static", 0.85, 0.8, false},
		{"chunked_prefill_size", -1, 0.0, true}, // both mean disabled
		{"chunked_prefill_size", 4096, 8192.0, false},
		{"attention_backend", "fa3", "fa3", true},
		{"attention_backend", "fa3", "triton", false},
		{"enable_mixed_chunk", true, false, false},
		{"page_size", 16, "16", false},
	}
	for _, tt := range tests {
		if got := sameValue(tt.name, tt.asked, tt.got); got != tt.expected {
			t.Errorf("sameValue(%s, %v, %v) = %v, want %v", tt.name, tt.asked, tt.got, got, tt.expected)
		}
	}
}

func TestEffectiveParams_folded_attention_backends_are_not_adjustments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		givenParams      events.Params
		givenServer      map[string]any
		expectedAdjusted []string
	}{
		{name: "equal prefill and decode fold into attention_backend",
			givenParams: events.Params{"prefill_attention_backend": "triton", "decode_attention_backend": "triton"},
			givenServer: map[string]any{"attention_backend": "triton", "prefill_attention_backend": nil, "decode_attention_backend": nil}},
		{name: "folding overrides an asked attention_backend",
			givenParams: events.Params{"attention_backend": "fa3", "prefill_attention_backend": "triton", "decode_attention_backend": "triton"},
			givenServer: map[string]any{"attention_backend": "triton", "prefill_attention_backend": nil, "decode_attention_backend": nil}},
		{name: "a hybrid stays as asked",
			givenParams: events.Params{"prefill_attention_backend": "fa3", "decode_attention_backend": "triton"},
			givenServer: map[string]any{"attention_backend": "fa3", "prefill_attention_backend": "fa3", "decode_attention_backend": "triton"}},
		{name: "a folded backend the server changed is an adjustment",
			givenParams:      events.Params{"prefill_attention_backend": "triton", "decode_attention_backend": "triton"},
			givenServer:      map[string]any{"attention_backend": "flashinfer", "prefill_attention_backend": nil, "decode_attention_backend": nil},
			expectedAdjusted: []string{"attention_backend"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, adjusted := effectiveParams(events.TrialQueued{Params: tt.givenParams}, tt.givenServer)
			if !slices.Equal(adjusted, tt.expectedAdjusted) {
				t.Fatalf("adjusted = %v, want %v", adjusted, tt.expectedAdjusted)
			}
		})
	}
}
