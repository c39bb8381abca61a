package sim

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	table := newFlagTable(flagSources()...)
	base := []string{"--model-path", "m"}
	tests := []struct {
		name          string
		givenArgs     []string
		expectedName  string
		expectedValue any
		withError     string
	}{
		{name: "alias", givenArgs: []string{"--tensor-parallel-size", "2"}, expectedName: "tp_size", expectedValue: 2},
		{name: "equals form", givenArgs: []string{"--tp-size=4"}, expectedName: "tp_size", expectedValue: 4},
		{name: "bool", givenArgs: []string{"--enable-mixed-chunk"}, expectedName: "enable_mixed_chunk", expectedValue: true},
		{name: "negative int", givenArgs: []string{"--chunked-prefill-size", "-1"}, expectedName: "chunked_prefill_size", expectedValue: -1},
		{name: "float", givenArgs: []string{"--mem-fraction-static", "0.85"}, expectedName: "mem_fraction_static", expectedValue: 0.85},
		{name: "choice", givenArgs: []string{"--attention-backend", "flashinfer"}, expectedName: "attention_backend", expectedValue: "flashinfer"},
		{name: "unambiguous prefix", givenArgs: []string{"--disable-overlap", "--tp", "2"}, expectedName: "tp_size", expectedValue: 2},
		{name: "int list", givenArgs: []string{"--cuda-graph-bs", "1", "2", "8"}, expectedName: "cuda_graph_bs", expectedValue: []int{1, 2, 8}},
		{name: "model alias", givenArgs: []string{"--model", "x"}, expectedName: "model_path", expectedValue: "x"},
		{name: "unknown flag", givenArgs: []string{"--foo", "--tp-size", "2"}, withError: "sglang-sim: error: unrecognized arguments: --foo"},
		{name: "unknown flags collected", givenArgs: []string{"--foo", "bar"}, withError: "unrecognized arguments: --foo bar"},
		{name: "bad int", givenArgs: []string{"--tp-size", "x"}, withError: "argument --tp-size/--tensor-parallel-size: invalid int value: 'x'"},
		{name: "bad int equals", givenArgs: []string{"--max-prefill-tokens=16k"}, withError: "argument --max-prefill-tokens: invalid int value: '16k'"},
		{name: "bad float", givenArgs: []string{"--mem-fraction-static", "lots"}, withError: "invalid float value: 'lots'"},
		{name: "bad choice", givenArgs: []string{"--schedule-policy", "sjf"}, withError: "argument --schedule-policy: invalid choice: 'sjf' (choose from 'lpm'"},
		{name: "bad backend", givenArgs: []string{"--attention-backend", "fa9"}, withError: "invalid choice: 'fa9'"},
		{name: "missing value", givenArgs: []string{"--tp-size"}, withError: "argument --tp-size/--tensor-parallel-size: expected one argument"},
		{name: "flag as value", givenArgs: []string{"--tp-size", "--dp-size", "2"}, withError: "expected one argument"},
		{name: "bool with value", givenArgs: []string{"--enable-mixed-chunk=1"}, withError: "ignored explicit argument '1'"},
		{name: "ambiguous prefix", givenArgs: []string{"--enable-d"}, withError: "ambiguous option: --enable-d could match"},
		{name: "positional", givenArgs: []string{"extra"}, withError: "unrecognized arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sa, err := parseArgs(table, append(slices.Clone(base), tt.givenArgs...))
			if tt.withError != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.withError) {
					t.Fatalf("want usage error containing %q, got %v", tt.withError, err)
				}
				if ExitCode(err) != 2 {
					t.Fatalf("exit code %d, want 2", ExitCode(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			got := sa.values[tt.expectedName]
			if gl, ok := got.([]int); ok {
				if !slices.Equal(gl, tt.expectedValue.([]int)) {
					t.Fatalf("%s = %v, want %v", tt.expectedName, got, tt.expectedValue)
				}
				return
			}
			if got != tt.expectedValue {
				t.Fatalf("%s = %#v, want %#v", tt.expectedName, got, tt.expectedValue)
			}
		})
	}
}

func TestParseArgs_requiresModelPath(t *testing.T) {
	_, err := parseArgs(newFlagTable(flagSources()...), []string{"--tp-size", "1"})
	if err == nil || !strings.Contains(err.Error(), "the following arguments are required: --model-path") {
		t.Fatalf("got %v", err)
	}
}

func TestServerArgs_config(t *testing.T) {
	sa, err := parseArgs(newFlagTable(flagSources()...), []string{"--model-path", "m", "--tp-size", "2",
		"--chunked-prefill-size", "0", "--page-size", "0", "--enable-dp-attention", "--api-key", "k"})
	if err != nil {
		t.Fatal(err)
	}
	c := sa.config()
	if c.TP != 2 || c.ChunkedPrefillSize != -1 || c.PageSize != -1 || !c.EnableDPAttention || !c.HasAPIKey || c.DP != 0 {
		t.Fatalf("config %+v", c)
	}
}

func TestLoadEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	e, err := loadEnv(env(map[string]string{EnvGPU: "a100-80gb", EnvCUDADevices: "2,3,5", EnvTimeScale: "0.02", EnvFault: FaultSlowStart}))
	if err != nil {
		t.Fatal(err)
	}
	if e.hw.Name != "A100-80G" || e.hw.NumGPUs != 3 || e.timeScale != 0.02 || e.fault != FaultSlowStart || e.noise != 0.03 {
		t.Fatalf("env %v", e)
	}
	if e, _ := loadEnv(env(nil)); e.hw.Name != "H100" || e.hw.NumGPUs != 1 {
		t.Fatalf("defaults %v", e)
	}
	for _, bad := range []map[string]string{{EnvGPU: "V100"}, {EnvFault: "explode"}, {EnvNoise: "-1"}, {EnvModel: "gpt-5"}} {
		if _, err := loadEnv(env(bad)); err == nil {
			t.Fatalf("%v: want error", bad)
		}
	}
}

func TestParseLaunch(t *testing.T) {
	cfg, m, err := ParseLaunch([]string{"--model-path", "Qwen/Qwen2.5-7B-Instruct", "--tp-size", "2", "--enable-mixed-chunk"}, "")
	if err != nil || cfg.TP != 2 || !cfg.EnableMixedChunk || m.Name != "qwen2.5-7b" {
		t.Fatalf("cfg %+v model %s err %v", cfg, m.Name, err)
	}
	if _, m, _ := ParseLaunch([]string{"--model-path", "/models/custom"}, "llama-3.1-70b"); m.Name != "llama-3.1-70b" {
		t.Fatalf("fallback model %s", m.Name)
	}
}

func TestFlagTable_mergesAliases(t *testing.T) {
	table := newFlagTable(flagSources()...)
	for _, f := range []string{"--ep", "--incremental-streaming-output", "--cuda-graph-bs", "--tp-size", "--tensor-parallel-size"} {
		if spec, err := table.lookup(f); err != nil || spec == nil {
			t.Fatalf("%s: not found (%v)", f, err)
		}
	}
	if spec, _ := table.lookup("--ep"); spec.name != "ep_size" || spec.flags[0] != "--ep-size" {
		t.Fatalf("--ep resolves to %+v", spec)
	}
}
