package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var at = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func one(n int) *int { return &n }

var yes, no = true, false

// goldenCases are one example of every payload; their JSON is the contract.
func goldenCases() map[string]events.Event {
	return map[string]events.Event{
		"candidate_proposed": events.CandidateProposed{
			Envelope: events.NewEnvelope(events.TypeCandidateProposed, "demo", 7, at),
			Params:   events.Params{"tp_size": 2.0, "attention_backend": nil, "enable_mixed_chunk": true, "schedule_policy": "lpm"},
			Sampler:  "motpe",
		},
		"candidate_rejected": events.CandidateRejected{
			Envelope: events.NewEnvelope(events.TypeCandidateRejected, "demo", 8, at),
			Params:   events.Params{"tp_size": 8.0, "pp_size": 2.0, "dp_size": 1.0},
			Rejections: []events.Rejection{{
				Rule: "seed.gpu_count", RuleSet: "seed", Source: "seed tuner rule 1",
				Reason: "tp_size × pp_size × dp_size = 8 × 2 × 1 = 16 GPUs, but device_num allows 8",
			}},
			DuplicateOf:   one(3),
			CanonicalHash: "c0ffee",
		},
		"trial_queued": events.TrialQueued{
			Envelope:   events.NewEnvelope(events.TypeTrialQueued, "demo", 9, at),
			Params:     events.Params{"tp_size": 2.0},
			GPUs:       2,
			ServerArgs: []string{"--model-path", "meta-llama/Llama-3.1-8B-Instruct", "--tp-size", "2"},
			Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 64, RandomInputLen: 512,
				RandomOutputLen: 128, RandomRangeRatio: 1, MaxConcurrency: 16, WarmupRequests: 2, Seed: 1, IgnoreEOS: true, VocabSize: 32000},
			Timeouts:      events.Timeouts{Startup: events.Duration(10 * time.Minute), Benchmark: events.Duration(10 * time.Minute), Shutdown: events.Duration(30 * time.Second)},
			CanonicalHash: "c0ffee",
		},
		"trial_queued_workloads": events.TrialQueued{
			Envelope: events.NewEnvelope(events.TypeTrialQueued, "demo", 13, at),
			Params:   events.Params{"tp_size": 1.0},
			GPUs:     1,
			Workload: events.Workload{Backend: "sglang", Dataset: "generated-shared-prefix", NumPrompts: 64,
				GSPNumGroups: 4, GSPPromptsPerGroup: 16, GSPSystemPromptLen: 2048, GSPQuestionLen: 128, GSPOutputLen: 256,
				MaxConcurrency: 16, Seed: 1, IgnoreEOS: true,
				Capacity: &events.CapacitySearch{Search: events.SearchConcurrency, Max: 256,
					SLO: map[string]float64{"p99_ttft_ms": 500, "p99_tpot_ms": 50}}},
		},
		"trial_queued_ladder": events.TrialQueued{
			Envelope: events.NewEnvelope(events.TypeTrialQueued, "demo", 14, at),
			GPUs:     1,
			Workload: events.Workload{Backend: "sglang", Dataset: "mooncake", DatasetPath: "/data/trace.jsonl",
				MooncakeSlowdownFactor: 2, NumPrompts: 100, Load: &events.LoadLadder{Concurrency: []int{4, 16, 64}, Headline: 16}},
		},
		"trial_queued_mix": events.TrialQueued{
			Envelope: events.NewEnvelope(events.TypeTrialQueued, "demo", 15, at),
			GPUs:     1,
			Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 64, MaxConcurrency: 16},
			Workloads: []events.NamedWorkload{
				{Name: "chat", Weight: 0.7, Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 64,
					RandomInputLen: 512, RandomOutputLen: 256, MaxConcurrency: 16}},
				{Name: "rag", Weight: 0.3, Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 32,
					RandomInputLen: 4096, RandomOutputLen: 128, MaxConcurrency: 8}},
			},
			MixAggregates: map[string]string{"p99_ttft_ms": events.AggregateMax, "output_throughput": events.AggregateWeighted},
		},
		"trial_result_mix": events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, "demo", 15, at),
			State:    events.StateComplete,
			Metrics:  map[string]float64{"p99_ttft_ms": 410, "output_throughput": 2060, "completed": 96},
			WorkloadMetrics: map[string]map[string]float64{
				"chat": {"p99_ttft_ms": 120, "output_throughput": 2500, "completed": 64},
				"rag":  {"p99_ttft_ms": 410, "output_throughput": 1033.3, "completed": 32},
			},
			Runner: "gpu-host-1", Backend: "sim",
			StartedAt: at, FinishedAt: at.Add(60 * time.Second),
		},
		"trial_progress": events.TrialProgress{
			Envelope: events.NewEnvelope(events.TypeTrialProgress, "demo", 9, at),
			Runner:   "gpu-host-1", Phase: events.PhaseBenchmarking, GPUs: []int{0, 1},
			Elapsed: events.Duration(42 * time.Second),
		},
		"trial_result_complete": events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, "demo", 9, at),
			Params:   events.Params{"tp_size": 2.0},
			State:    events.StateComplete,
			Metrics:  map[string]float64{"mean_ttft_ms": 25.5, "output_throughput": 2500, "startup_seconds": 41.2},
			Units:    map[string]string{"mean_ttft_ms": "ms", "output_throughput": "tok/s", "startup_seconds": "s"},
			Runner:   "gpu-host-1", Host: "gpu-host-1", GPUs: []int{0, 1}, GPUModel: "NVIDIA H100 80GB HBM3", Backend: "sglang",
			LaunchCommand: []string{"python3", "-m", "sglang.launch_server", "--model-path", "m", "--tp-size", "2", "--host", "127.0.0.1", "--port", "31000"},
			LogRef:        "/var/lib/sgtune/logs/demo-9.log",
			StartedAt:     at, FinishedAt: at.Add(90 * time.Second),
		},
		"trial_result_what_ran": events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, "demo", 16, at),
			Params:   events.Params{"tp_size": 2.0, "chunked_prefill_size": 4096.0, "attention_backend": nil},
			State:    events.StateComplete,
			Metrics:  map[string]float64{"mean_ttft_ms": 25.5, "output_throughput": 2500, "output_throughput_per_gpu": 1250, "gpus": 2},
			Runner:   "gpu-host-1", GPUs: []int{0, 1}, Backend: "sglang",
			SGLangVersion: "0.5.5", ModelPathLoaded: "meta-llama/Llama-3.1-8B-Instruct",
			EffectiveParams: events.Params{"tp_size": 2.0, "chunked_prefill_size": 8192.0, "attention_backend": "fa3", "mem_fraction_static": 0.835},
			AdjustedParams:  []string{"chunked_prefill_size"},
			StartedAt:       at, FinishedAt: at.Add(90 * time.Second),
		},
		"trial_result_ladder": events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, "demo", 12, at),
			Params:   events.Params{"tp_size": 1.0},
			State:    events.StateComplete,
			Metrics:  map[string]float64{"capacity_concurrency": 16, "capacity_output_throughput": 1800, "mean_ttft_ms": 60.5},
			Units:    map[string]string{"capacity_concurrency": "req", "capacity_output_throughput": "tok/s", "mean_ttft_ms": "ms"},
			LoadPoints: []events.LoadPoint{
				{MaxConcurrency: 16, Metrics: map[string]float64{"mean_ttft_ms": 60.5, "p99_ttft_ms": 90}, SLOMet: &yes},
				{MaxConcurrency: 32, Metrics: map[string]float64{"mean_ttft_ms": 210, "p99_ttft_ms": 720}, SLOMet: &no, Repeats: 2},
				{RequestRate: 2.5, Metrics: map[string]float64{"completed": 3}, Error: "stream stalled"},
			},
			InputLens: []int{1024, 1024, 980},
			Runner:    "gpu-host-1", Backend: "sim",
			StartedAt: at, FinishedAt: at.Add(60 * time.Second),
		},
		"trial_result_failed": events.TrialResult{
			Envelope:     events.NewEnvelope(events.TypeTrialResult, "demo", 10, at),
			Params:       events.Params{"tp_size": 1.0},
			State:        events.StateFailed,
			FailureClass: events.FailOOM,
			Reason:       "the server ran out of GPU memory while loading",
			LogTail:      "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.",
			Runner:       "gpu-host-1", Backend: "sglang",
			StartedAt: at, FinishedAt: at.Add(30 * time.Second),
		},
		"dead_letter": events.DeadLetter{
			Envelope:     events.NewEnvelope(events.TypeDeadLetter, "demo", 11, at),
			SourceStream: events.StreamCandidates, Consumer: events.DurableValidator,
			Subject: events.CandidateSubject("demo", 11), StreamSeq: 17, Delivered: 1,
			Reason: "malformed event", Data: []byte("{not json"),
		},
	}
}

func TestGoldenRoundTrip(t *testing.T) {
	for name, ev := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Fatalf("%s changed; the contract only grows:\n got: %s\nwant: %s", name, got, want)
			}
			// Decoding the golden file gives back the same value.
			back := reflect.New(reflect.TypeOf(ev))
			if err := json.Unmarshal(want, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Elem().Interface(), ev) {
				t.Fatalf("round trip differs:\n got: %#v\nwant: %#v", back.Elem().Interface(), ev)
			}
		})
	}
}

func TestDecodeChecksTypeAndStudy(t *testing.T) {
	good, _ := json.Marshal(goldenCases()["candidate_proposed"])
	if _, err := events.Decode[events.CandidateProposed](good, events.TypeCandidateProposed); err != nil {
		t.Fatalf("good event: %v", err)
	}
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"not json", `{"id":`, events.ErrMalformed},
		{"wrong type", `{"type":"trial.result","study":"s","trial":1}`, events.ErrUnknownType},
		{"no study", `{"type":"candidate.proposed","trial":1}`, events.ErrMalformed},
		{"negative trial", `{"type":"candidate.proposed","study":"s","trial":-1}`, events.ErrMalformed},
		{"wrong field type", `{"type":"candidate.proposed","study":"s","trial":"x"}`, events.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.Decode[events.CandidateProposed]([]byte(tt.data), events.TypeCandidateProposed)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"candidate", events.CandidateSubject("s", 3), "sgtune.candidates.s.3"},
		{"trial", events.TrialSubject("s", 4, 3), "sgtune.trials.s.g4.3"},
		{"class filter", events.TrialsOfClass(4), "sgtune.trials.*.g4.*"},
		{"durable", events.TrialsDurable(2), "runners-g2"},
		{"outcome", events.OutcomeSubject("s", 3), "sgtune.outcomes.s.3"},
		{"front key", events.FrontKey("s"), "front.s"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	for _, subj := range []string{events.TrialSubject("my-study", 8, 12), events.OutcomeSubject("my-study", 12)} {
		study, trial, err := events.ParseTrialFromSubject(subj)
		if err != nil || study != "my-study" || trial != 12 {
			t.Errorf("ParseTrialFromSubject(%q) = %q, %d, %v", subj, study, trial, err)
		}
	}
	for _, bad := range []string{"", "a.b", "sgtune.outcomes.s.x", "nats.outcomes.s.1"} {
		if _, _, err := events.ParseTrialFromSubject(bad); !errors.Is(err, events.ErrBadSubject) {
			t.Errorf("ParseTrialFromSubject(%q): got %v", bad, err)
		}
	}
	for _, name := range []string{"a.b", "", "a b", "x*", "t>"} {
		if err := events.ValidateStudyName(name); err == nil {
			t.Errorf("study name %q accepted", name)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var d events.Duration
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `12`: 12 * time.Second, `"1m30s"`: 90 * time.Second} {
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("%s: got %v, %v", in, d.D(), err)
		}
	}
	for _, bad := range []string{`"soon"`, `"-1s"`, `true`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
