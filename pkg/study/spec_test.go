package study_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestDefaultReproducesTheSeed(t *testing.T) {
	s := study.Default()
	if err := s.Validate(); err != nil {
		t.Fatalf("default spec invalid: %v", err)
	}
	want := []string{"tp_size", "attention_backend", "chunked_prefill_size", "max_prefill_tokens", "dp_size",
		"schedule_policy", "pp_size", "decode_attention_backend", "prefill_attention_backend", "page_size",
		"cuda_graph_max_bs", "enable_mixed_chunk", "disable_overlap_schedule", "enable_torch_compile",
		"num_continuous_decode_steps", "enable_two_batch_overlap", "tokenizer_worker_num", "sampling_backend"}
	if got := s.Space.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("space = %v", got)
	}
	if s.StudyName != "sglang_throughput_optimization" || s.NTrials != 100 || s.DeviceNum != 8 {
		t.Fatalf("seed CLI defaults differ: %+v", s)
	}
	if o := s.Objectives; len(o) != 2 || o[0].Name != "ttft" || o[0].Direction != study.Minimize || o[1].Name != "tps" || o[1].Direction != study.Maximize {
		t.Fatalf("objectives = %+v", o)
	}
	ab, _ := s.Space.Lookup("attention_backend")
	if ab.Values[0] != nil || len(ab.Values) != 6 {
		t.Fatalf("attention_backend values = %v", ab.Values)
	}
	// SGLang's own rules and the hardware rules are on by default, so no
	// launch is wasted on a config SGLang refuses.
	if got := s.Rules.Sets; !reflect.DeepEqual(got, []string{"seed", "sglang", "hardware"}) {
		t.Fatalf("default rule sets = %v", got)
	}
}

func TestRuleSetsOverride(t *testing.T) {
	tests := []struct {
		name, text string
		expected   []string
	}{
		{"the seed's own behaviour", "rules: {sets: [seed]}\n", []string{"seed"}},
		{"no rule set but safety", "rules: {sets: []}\n", []string{}},
		{"other rules keys keep the default sets", "rules: {disabled: [seed.pp_dp_cap]}\n", []string{"seed", "sglang", "hardware"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := study.LoadFile(writeSpec(t, "study.yaml", tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Rules.Sets) != len(tt.expected) || (len(tt.expected) > 0 && !reflect.DeepEqual(s.Rules.Sets, tt.expected)) {
				t.Fatalf("sets = %v, want %v", s.Rules.Sets, tt.expected)
			}
			// ... and survive the round trip through the study's stored JSON.
			raw, err := s.ToJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := study.FromJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Rules.Sets) != len(tt.expected) {
				t.Fatalf("sets after JSON = %v, want %v", back.Rules.Sets, tt.expected)
			}
		})
	}
}

func writeSpec(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseOverridesDefaults(t *testing.T) {
	p := writeSpec(t, "study.yaml", `
study_name: llama-h100
n_trials: 40
model:
  path: /models/llama
  static_args: {mem_fraction_static: 0.85, trust_remote_code: true}
space:
  tp_size: [1, 2]
  attention_backend: [None, fa3, flashinfer]
  enable_mixed_chunk: [false, true]
  mem_fraction_static: [0.8, 0.9]
workload:
  num_prompts: 64
constraints:
  - {metric: p99_ttft_ms, max: 500}
`)
	s, err := study.LoadFile(p)
	if err == nil || !strings.Contains(err.Error(), "space.mem_fraction_static") {
		t.Fatalf("a parameter both searched and fixed must be an error naming it, got %v", err)
	}
	text, _ := os.ReadFile(p)
	p = writeSpec(t, "study.yaml", strings.Replace(string(text), "  mem_fraction_static: [0.8, 0.9]\n", "", 1))
	s, err = study.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.StudyName != "llama-h100" || s.NTrials != 40 || s.Model.Path != "/models/llama" {
		t.Fatalf("overrides lost: %+v", s)
	}
	if s.Workload.NumPrompts != 64 || s.Workload.RandomInputLen != 1024 {
		t.Fatalf("workload merge: %+v", s.Workload)
	}
	if s.Model.ServerCommand[0] != "python3" || s.DeviceNum != 8 {
		t.Fatalf("defaults lost: %+v", s.Model)
	}
	if got := s.Space.Names(); !reflect.DeepEqual(got, []string{"tp_size", "attention_backend", "enable_mixed_chunk"}) {
		t.Fatalf("space order = %v", got)
	}
	ab, _ := s.Space.Lookup("attention_backend")
	if ab.Values[0] != nil || ab.Values[1] != "fa3" {
		t.Fatalf("None not read as nil: %v", ab.Values)
	}
	if len(s.Constraints) != 1 || *s.Constraints[0].Max != 500 {
		t.Fatalf("constraints = %+v", s.Constraints)
	}
	args, err := s.LaunchArgs(events.Params{"tp_size": 2, "attention_backend": nil, "enable_mixed_chunk": true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--model-path", "/models/llama", "--tp-size", "2", "--enable-mixed-chunk", "--mem-fraction-static", "0.85", "--trust-remote-code"}
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("launch args\n got %q\nwant %q", args, want)
	}
}

func TestVersionPinnedSpecsAcceptTheirOwnFlags(t *testing.T) {
	p := writeSpec(t, "study.yaml", "rules: {sglang_version: main}\nmodel:\n  static_args: {detokenizer_worker_num: 2}\nspace:\n  schedule_policy: [fcfs, priority]\n")
	if _, err := study.LoadFile(p); err != nil {
		t.Fatalf("main-only flags under main: %v", err)
	}
}

func TestParseJSON(t *testing.T) {
	p := writeSpec(t, "study.json", `{"study_name": "j", "space": {"tp_size": [1, 2, 4]}, "sampler": {"algorithm": "random"}}`)
	s, err := study.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sampler.Algorithm != "random" || len(s.Space) != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestParseErrorsNameTheKeyAndFile(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown top key", "studyname: x\n", []string{"studyname", "unknown key"}},
		{"unknown nested key", "workload:\n  num_prompt: 3\n", []string{"workload.num_prompt", "unknown key"}},
		{"unknown parameter", "space:\n  tp_sise: [1]\n", []string{"line 2: space.tp_sise", "unknown parameter", "tp_size"}},
		{"empty values", "study_name: x\nspace:\n  tp_size: [1]\n  pp_size: []\n", []string{"line 4: space.pp_size", "empty"}},
		{"wrong value type", "space:\n  tp_size: [1, two]\n", []string{"space.tp_size[1]", "integer"}},
		{"bad choice", "space:\n  attention_backend: [flashinfer, fa9]\n", []string{"space.attention_backend[1]", "fa9"}},
		{"wrong scalar type", "n_trials: many\n", []string{"n_trials", "integer"}},
		{"wrong bool", "workload:\n  ignore_eos: yes-please\n", []string{"workload.ignore_eos", "true or false"}},
		{"list for mapping", "model: [a]\n", []string{"model", "mapping"}},
		{"bad duration", "model:\n  startup_timeout: soon\n", []string{"model.startup_timeout", "soon"}},
		{"unknown static arg", "model:\n  static_args: {mem_fraction: 0.8}\n", []string{"line 2: model.static_args.mem_fraction", "unknown parameter"}},
		{"runner-owned static arg", "model:\n  static_args: {port: 1}\n", []string{"model.static_args.port"}},
		{"bad study name", "study_name: a.b\n", []string{"study_name"}},
		{"bad rule set", "rules: {sets: [seed, magic]}\n", []string{"rules.sets[1]", "magic"}},
		{"bad direction", "objectives: [{name: x, metric: y, direction: up}]\n", []string{"line 1: objectives[0].direction"}},
		{"unknown objective metric", "objectives:\n  - {name: ttft, metric: mean_ttft_ms, direction: minimize}\n  - {name: tps, metric: output_tput, direction: maximize}\n",
			[]string{"line 3: objectives[1].metric", `unknown metric "output_tput"`, "known: ", "output_throughput", "p99_ttft_ms"}},
		{"unknown constraint metric", "constraints:\n  - {metric: p99_ttft, max: 500}\n", []string{"line 2: constraints[0].metric", `"p99_ttft"`, "p99_ttft_ms"}},
		{"bad n_trials", "n_trials: 0\n", []string{"line 1: n_trials", "at least 1"}},
		{"per-GPU typo", "objectives: [{name: x, metric: output_throughput_per_gpus, direction: maximize}]\n",
			[]string{"objectives[0].metric", "output_throughput_per_gpus", "did you mean", "output_throughput_per_gpu"}},
		{"bad sglang version", "rules: {sglang_version: \"banana!\"}\n", []string{"rules.sglang_version", "banana!"}},
		{"static flag unknown to the pinned version", "model:\n  static_args: {detokenizer_worker_num: 2}\n", []string{"model.static_args.detokenizer_worker_num", "only main"}},
		{"searched choice unknown to the pinned version", "space:\n  schedule_policy: [fcfs, priority]\n", []string{"space.schedule_policy[1]", "only main"}},
		{"malformed yaml", "space: [\n", []string{"study.yaml"}},
		{"empty file", "   \n", []string{"empty"}},
		{"not a mapping", "- 1\n- 2\n", []string{"mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeSpec(t, "study.yaml", tt.text)
			_, err := study.LoadFile(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, study.ErrInvalidSpec) {
				t.Fatalf("not ErrInvalidSpec: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "study.yaml") {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if _, err := study.LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

// A custom benchmark's own metrics are declared in metrics: and may then be objectives.
func TestParseAcceptsDeclaredMetrics(t *testing.T) {
	p := writeSpec(t, "study.yaml", "metrics: [my_latency_s]\nobjectives:\n  - {name: lat, metric: my_latency_s, direction: minimize}\n  - {name: tps, metric: output_throughput, direction: maximize}\n")
	s, err := study.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Objectives[0].Metric != "my_latency_s" {
		t.Fatalf("%+v", s.Objectives)
	}
	def := study.Default()
	if err := def.CheckMetricNames(); err != nil {
		t.Fatalf("the default objectives: %v", err)
	}
}

func TestSpecJSONRoundTrip(t *testing.T) {
	s := study.Default()
	s.Model.StaticArgs = map[string]any{"mem_fraction_static": 0.8}
	data, err := s.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := study.FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Space, s.Space) || back.Model.StaticArgs["mem_fraction_static"] != 0.8 {
		t.Fatalf("round trip lost data:\n%+v\n%+v", back.Space, s.Space)
	}
}

func TestGPUsNeeded(t *testing.T) {
	tests := []struct {
		name   string
		params events.Params
		static map[string]any
		want   int
	}{
		{"defaults", events.Params{}, nil, 1},
		{"tp pp dp", events.Params{"tp_size": 2, "pp_size": 2, "dp_size": 2}, nil, 8},
		{"dp attention", events.Params{"tp_size": 4, "dp_size": 4, "enable_dp_attention": true}, nil, 4},
		{"static dp attention", events.Params{"tp_size": 4, "dp_size": 2}, map[string]any{"enable_dp_attention": true}, 4},
		{"floats from JSON", events.Params{"tp_size": 2.0, "dp_size": 2.0}, nil, 4},
		{"None means default", events.Params{"tp_size": nil}, nil, 1},
	}
	for _, tt := range tests {
		if got := study.GPUsNeeded(tt.params, tt.static); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestNormalizeParams(t *testing.T) {
	got, err := study.NormalizeParams(events.Params{"tp_size": 2.0, "attention_backend": "None", "enable_mixed_chunk": true})
	if err != nil {
		t.Fatal(err)
	}
	if got["tp_size"] != 2 || got["attention_backend"] != nil {
		t.Fatalf("%v", got)
	}
	for _, bad := range []events.Params{{"tp_size": 2.5}, {"tp_size": "2"}, {"nope": 1}, {"enable_mixed_chunk": "yes"}} {
		if _, err := study.NormalizeParams(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParamsKey(t *testing.T) {
	a := study.ParamsKey(events.Params{"tp_size": 2.0, "attention_backend": "None", "enable_mixed_chunk": true})
	b := study.ParamsKey(events.Params{"enable_mixed_chunk": true, "attention_backend": nil, "tp_size": 2})
	if a != b || a != "attention_backend=None;enable_mixed_chunk=True;tp_size=2;" {
		t.Fatalf("keys differ or are unexpected: %q vs %q", a, b)
	}
	if study.ParamsKey(events.Params{"tp_size": 4}) == a {
		t.Fatal("different configs share a key")
	}
}

func TestResolveAlgorithm(t *testing.T) {
	tests := []struct {
		name             string
		algo, acq        string
		objectives       int
		expected         string
		expectDeprecated bool
		expectErr        string
	}{
		{"default", "", "", 2, study.AlgoGPEHVI, false, ""},
		{"gp-ehvi", "gp-ehvi", "", 2, study.AlgoGPEHVI, false, ""},
		{"motpe is MOTPE", "motpe", "", 2, study.AlgoMOTPE, false, ""},
		{"old spelling of gp-ehvi", "motpe", "ehvi", 2, study.AlgoGPEHVI, true, ""},
		{"old spelling of motpe", "motpe", "tpe", 2, study.AlgoMOTPE, true, ""},
		{"acquisition tpe over the default", "gp-ehvi", "tpe", 2, study.AlgoMOTPE, true, ""},
		{"tpe on one objective", "tpe", "", 1, study.AlgoTPE, false, ""},
		{"cmaes on one objective", "cmaes", "", 1, study.AlgoCMAES, false, ""},
		{"cmaes on two objectives", "cmaes", "", 2, "", false, `algorithm "cmaes" is goptuna's single-objective sampler`},
		{"unknown algorithm", "bohb", "", 2, "", false, `unknown algorithm "bohb"`},
		{"unknown acquisition", "motpe", "ucb", 2, "", false, `unknown acquisition "ucb"`},
		{"acquisition with nsga2", "nsga2", "ehvi", 2, "", false, `acquisition "ehvi"`},
	}
	for _, tc := range tests {
		got, note, err := study.ResolveAlgorithm(tc.algo, tc.acq, tc.objectives)
		if tc.expectErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.expectErr) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.expectErr)
			}
			continue
		}
		if err != nil || got != tc.expected || (note != "") != tc.expectDeprecated {
			t.Errorf("%s: got (%q, %q, %v), want %q (deprecated %v)", tc.name, got, note, err, tc.expected, tc.expectDeprecated)
		}
	}
	// Through a spec file: the error names the key and the algorithm.
	_, err := study.Parse("s.yaml", []byte("sampler:\n  algorithm: bohb\n"))
	if err == nil || !strings.Contains(err.Error(), `sampler.algorithm: unknown algorithm "bohb"`) {
		t.Errorf("spec with an unknown algorithm: %v", err)
	}
}
