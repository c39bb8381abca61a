package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runValidate runs `sgtune validate args...` in-process.
func runValidate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"validate"}, args...), func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	specFile := filepath.Join(dir, "study.yaml")
	if err := os.WriteFile(specFile, []byte(`
model:
  path: deepseek-ai/DeepSeek-V3
  preset: deepseek-v3
rules:
  sets: [seed, sglang]
space:
  tp_size: [1, 2, 4, 8]
  pp_size: [1, 2]
  attention_backend: [null, flashmla, fa3, trtllm_mha]
  enable_two_batch_overlap: [false, true]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	seedOnly := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seedOnly, []byte("rules: {sets: [seed]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		givenArgs      []string
		expectedCode   int
		expectedStdout []string
		expectedStderr string
	}{
		{"valid", []string{`{"tp_size": 2, "pp_size": 2, "disable_overlap_schedule": false}`}, 0,
			[]string{"VALID (rule sets: safety, seed, sglang, hardware; model: llama-3.1-8b; 4 GPUs)", "disable_overlap_schedule: True", "pp_size: 2",
				"launch flags:\n  --model-path meta-llama/Llama-3.1-8B-Instruct --tp-size 2 --pp-size 2\n",
				"note: hardware rules not checked: no fleet was given"}, ""},
		{"the seed's rules alone", []string{"--spec", seedOnly, `{"tp_size": 2, "enable_two_batch_overlap": true}`}, 0,
			[]string{"VALID (rule sets: safety, seed; model: llama-3.1-8b; 2 GPUs)"}, ""},
		{"default rules refuse what SGLang refuses", []string{`{"tp_size": 2, "enable_two_batch_overlap": true}`}, 1,
			[]string{"INVALID", "sglang.tbo_"}, ""},
		{"flags after the JSON", []string{`{"tp_size": 8}`, "--device-num", "4"}, 1,
			[]string{"INVALID: 1 rule fails", "seed.gpu_count [seed]: tp_size × pp_size × dp_size = 8 × 1 × 1 = 8 GPUs, but device_num allows 4.", "source: seed tuner"},
			"INVALID: seed.gpu_count"},
		{"every failing rule", []string{"--spec", specFile, `{"tp_size": 8, "pp_size": 2, "attention_backend": "trtllm_mha", "enable_two_batch_overlap": true}`}, 1,
			[]string{"INVALID: 3 rules fail", "seed.gpu_count [seed]", "sglang.backend_model_type [sglang]: attention_backend = trtllm_mha implements only ordinary multi-head attention, but deepseek-v3",
				"sglang.tbo_a2a_backend [sglang]", "source: SGLang python/sglang/srt/server_args.py (R-TBO1)"},
			""},
		{"gpu names the host", []string{"--gpu-model", "a100-40g", "--device-num", "2", `{"attention_backend": "fa3", "tp_size": 2}`}, 0,
			[]string{"VALID (rule sets: safety, seed, sglang, hardware;", "host considered: simulated@a100-40g: 2 × NVIDIA A100-SXM4-40GB (sm80, 40 GiB)"}, ""},
		{"gpu turns hardware on", []string{"--spec", seedOnly, "--gpu-model", "a100-40g", "--device-num", "2", `{"attention_backend": "fa3", "tp_size": 2}`}, 0,
			[]string{"VALID (rule sets: safety, seed, hardware;", "note: --gpu-model turned the hardware rule set on"}, ""},
		{"gpu rejects with hosts", []string{"--spec", specFile, "--gpu-model", "A100-80G", `{"attention_backend": "flashmla", "tp_size": 8}`}, 1,
			[]string{"hardware.mla_backend_compute_capability [hardware]: attention_backend = flashmla needs compute capability 9.x (Hopper), but no live host has 8 such GPUs (hosts considered: simulated@a100-80g: 8 × NVIDIA A100-SXM4-80GB (sm80, 80 GiB))."}, ""},
		{"injection as a value", []string{`{"attention_backend": "flashinfer --api-key x"}`}, 2, nil, "not one of SGLang's choices"},
		{"unknown parameter", []string{`{"tp_sise": 2}`}, 2, nil, `unknown parameter "tp_sise" (did you mean "tp_size"?)`},
		{"malformed JSON", []string{`{"tp_size": 2`}, 2, nil, "malformed JSON"},
		{"not an object", []string{`[1, 2]`}, 2, nil, "malformed JSON"},
		{"no JSON", nil, 2, nil, "want exactly one JSON object"},
		{"two JSON", []string{`{}`, `{}`}, 2, nil, "got 2 arguments"},
		{"unknown GPU", []string{"--gpu", "TPU", `{}`}, 2, nil, "unknown GPU model"},
		{"bad spec", []string{"--spec", filepath.Join(dir, "missing.yaml"), `{}`}, 2, nil, "missing.yaml"},
		{"unknown flag", []string{"--gpus", "H100", `{}`}, 2, nil, "flag provided but not defined"},
		{"help", []string{"-h"}, 0, nil, "usage: sgtune validate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runValidate(t, tc.givenArgs...)
			if code != tc.expectedCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.expectedCode, stdout, stderr)
			}
			for _, w := range tc.expectedStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tc.expectedStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.expectedStderr, stderr)
			}
		})
	}
}

func TestValidate_json(t *testing.T) {
	t.Parallel()
	type verdict struct {
		Valid         bool           `json:"valid"`
		GPUs          int            `json:"gpus"`
		CanonicalHash string         `json:"canonical_hash"`
		Canonical     map[string]any `json:"canonical"`
		LaunchArgs    []string       `json:"launch_args"`
		Rejections    []struct {
			Rule    string `json:"rule"`
			RuleSet string `json:"rule_set"`
			Reason  string `json:"reason"`
			Source  string `json:"source"`
		} `json:"rejections"`
		BadInput string `json:"bad_input"`
	}
	decode := func(t *testing.T, s string) verdict {
		t.Helper()
		if strings.Count(strings.TrimSpace(s), "\n") != 0 {
			t.Fatalf("want one JSON line, got:\n%s", s)
		}
		var v verdict
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		return v
	}

	code, out, _ := runValidate(t, "--json", `{"tp_size": 2, "attention_backend": "torch_native", "cuda_graph_max_bs": 64}`)
	v := decode(t, out)
	if code != 0 || !v.Valid || v.GPUs != 2 || len(v.CanonicalHash) != 32 || len(v.LaunchArgs) == 0 {
		t.Fatalf("exit %d, %+v", code, v)
	}
	// torch_native runs without CUDA graphs, so cuda_graph_max_bs is not part of the canonical config.
	args := v.Canonical["args"].(map[string]any)
	if _, ok := args["cuda_graph_max_bs"]; ok || args["disable_cuda_graph"] != true {
		t.Fatalf("canonical args %v", args)
	}
	// The same config without the meaningless setting has the same hash.
	_, out2, _ := runValidate(t, "--json", `{"tp_size": 2, "attention_backend": "torch_native"}`)
	if decode(t, out2).CanonicalHash != v.CanonicalHash {
		t.Fatal("equivalent configs differ")
	}

	code, out, _ = runValidate(t, "--json", "--device-num", "1", `{"tp_size": 2}`)
	v = decode(t, out)
	if code != 1 || v.Valid || len(v.Rejections) != 1 || v.Rejections[0].Rule != "seed.gpu_count" || v.Rejections[0].RuleSet != "seed" ||
		v.Rejections[0].Reason == "" || v.Rejections[0].Source == "" || len(v.LaunchArgs) != 0 {
		t.Fatalf("exit %d, %+v", code, v)
	}

	code, out, _ = runValidate(t, "--json", `{"tp_size": "2"}`)
	if v := decode(t, out); code != 2 || v.Valid || !strings.Contains(v.BadInput, "want an integer") {
		t.Fatalf("exit %d, %+v", code, v)
	}
}
