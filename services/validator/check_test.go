package validator_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

func mustHost(t testing.TB, model string, n int) events.RunnerStatus {
	t.Helper()
	h, err := validator.SimulatedHost(model, n)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheck(t *testing.T) {
	t.Parallel()
	hw := study.Default()
	hw.Rules.Sets = []string{"seed", "sglang", "hardware"}
	custom := study.Default()
	custom.Model.Path = "org/my-mla-moe"
	custom.Model.Shape = &study.ModelShape{ParamsB: 16, Heads: 16, KVHeads: 16, MoE: true, MLA: true}
	custom.Rules.Sets = []string{"sglang"}
	custom.Space = slices.Clone(custom.Space)
	for i, ps := range custom.Space {
		if ps.Name == "decode_attention_backend" {
			custom.Space[i].Values = []any{nil, "flashmla", "trtllm_mha"}
		}
	}
	tests := []struct {
		name          string
		givenSpec     study.Spec
		givenParams   events.Params
		givenOpts     validator.CheckOptions
		expectedValid bool
		expectedRules []string
		expectedText  string // a fragment of a reason or note
	}{
		{"default study, partial config", study.Default(), events.Params{"tp_size": 2.0}, validator.CheckOptions{}, true, nil, ""},
		{"seed rules", study.Default(), events.Params{"tp_size": 4.0, "pp_size": 4.0}, validator.CheckOptions{}, false,
			[]string{"seed.gpu_count"}, "4 × 4 × 1 = 16 GPUs, but device_num allows 8"},
		{"device_num override", study.Default(), events.Params{"tp_size": 4.0}, validator.CheckOptions{DeviceNum: 2}, false,
			[]string{"seed.gpu_count"}, "device_num allows 2"},
		{"hardware without fleet is not guessed", hw, events.Params{"tp_size": 8.0}, validator.CheckOptions{}, true, nil, "hardware rules not checked"},
		{"fa3 on an A10 host", hw, events.Params{"attention_backend": "fa3", "tp_size": 1.0},
			validator.CheckOptions{Fleet: []events.RunnerStatus{mustHost(t, "B200", 2)}}, false,
			[]string{"hardware.fa3_compute_capability"}, "simulated@b200: 2 × NVIDIA B200 (sm100, 180 GiB)"},
		{"70b on one A100-40G", func() study.Spec { s := hw; s.Model.Preset = "llama-3.1-70b"; return s }(), events.Params{"tp_size": 1.0},
			validator.CheckOptions{Fleet: []events.RunnerStatus{mustHost(t, "A100-40G", 8)}}, false,
			[]string{"hardware.weights_fit"}, "llama-3.1-70b needs about 141.2 GB of weights per GPU"},
		{"custom MLA model rejects trtllm_mha", custom, events.Params{"decode_attention_backend": "trtllm_mha"},
			validator.CheckOptions{}, false, []string{"sglang.backend_model_type"}, "org/my-mla-moe uses multi-head latent attention"},
		{"custom MLA model takes flashmla", custom, events.Params{"decode_attention_backend": "flashmla"}, validator.CheckOptions{}, true, nil, ""},
		{"TBO on the custom MoE model needs an all-to-all backend", custom, events.Params{"enable_two_batch_overlap": true},
			validator.CheckOptions{}, false, []string{"sglang.tbo_a2a_backend"}, "moe_a2a_backend is none"},
		{"outside the domain", study.Default(), events.Params{"tp_size": 3.0}, validator.CheckOptions{}, false,
			[]string{"safety.domain", "sglang.tp_divides_heads", "sglang.tp_kv_heads"}, "tp_size = 3 is not among the study's values"},
		{"not searched", study.Default(), events.Params{"mem_fraction_static": 0.5}, validator.CheckOptions{}, false,
			[]string{"safety.unknown_param"}, "not in this study's search space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := validator.Check(tc.givenSpec, tc.givenParams, tc.givenOpts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var text strings.Builder
			for _, r := range v.Rejections {
				ids = append(ids, r.Rule)
				text.WriteString(r.Reason + "\n")
			}
			text.WriteString(strings.Join(v.Notes, "\n"))
			if v.Valid != tc.expectedValid || !slices.Equal(ids, tc.expectedRules) {
				t.Fatalf("valid %v, rules %v; want %v, %v\n%s", v.Valid, ids, tc.expectedValid, tc.expectedRules, text.String())
			}
			if !strings.Contains(text.String(), tc.expectedText) {
				t.Fatalf("%q not in\n%s", tc.expectedText, text.String())
			}
			if len(v.CanonicalHash) != 32 || v.Valid != (len(v.LaunchArgs) > 0) {
				t.Fatalf("hash %q, launch args %q", v.CanonicalHash, v.LaunchArgs)
			}
		})
	}
}

func TestCheck_valid_config_has_canonical_form_and_flags(t *testing.T) {
	t.Parallel()
	spec := study.Default()
	v, err := validator.Check(spec, events.Params{"tp_size": 2.0, "pp_size": 2.0, "disable_overlap_schedule": false, "max_prefill_tokens": nil}, validator.CheckOptions{})
	if err != nil || !v.Valid {
		t.Fatalf("%+v %v", v, err)
	}
	// pp > 1 turns overlap off (R-PP1); None max_prefill_tokens is the default, so absent.
	want := map[string]any{"tp_size": 2, "pp_size": 2, "disable_overlap_schedule": true}
	if len(v.Canonical.Args) != len(want) {
		t.Fatalf("canonical args %v, want %v", v.Canonical.Args, want)
	}
	for k, w := range want {
		if v.Canonical.Args[k] != w {
			t.Fatalf("canonical args %v, want %v", v.Canonical.Args, want)
		}
	}
	if !slices.Equal(v.LaunchArgs, []string{"--model-path", spec.Model.Path, "--tp-size", "2", "--pp-size", "2"}) {
		t.Fatalf("launch args %q", v.LaunchArgs)
	}
	// The same config spelled otherwise has the same hash.
	same, _ := validator.Check(spec, events.Params{"tp_size": 2.0, "pp_size": 2.0, "disable_overlap_schedule": true}, validator.CheckOptions{})
	if same.CanonicalHash != v.CanonicalHash {
		t.Fatal("equivalent configs hash differently")
	}
}

func TestCheck_bad_input(t *testing.T) {
	t.Parallel()
	badSpec := study.Default()
	badSpec.Model.Shape = &study.ModelShape{Heads: 0}
	for name, tc := range map[string]struct {
		spec   study.Spec
		params events.Params
		opts   validator.CheckOptions
		want   string
	}{
		"unknown parameter": {study.Default(), events.Params{"tp_sise": 2.0}, validator.CheckOptions{}, `did you mean "tp_size"`},
		"unknown value":     {study.Default(), events.Params{"attention_backend": "flashinfer --api-key x"}, validator.CheckOptions{}, "not one of SGLang's choices"},
		"wrong type":        {study.Default(), events.Params{"tp_size": "two"}, validator.CheckOptions{}, "want an integer"},
		"runner owned":      {study.Default(), events.Params{"port": 1.0}, validator.CheckOptions{}, "set by sgtune itself"},
		"bad spec":          {badSpec, events.Params{}, validator.CheckOptions{}, "model.shape.params_b"},
		"negative devices":  {study.Default(), events.Params{}, validator.CheckOptions{DeviceNum: -1}, "device_num"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := validator.Check(tc.spec, tc.params, tc.opts)
			if !errors.Is(err, validator.ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBadInput mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSimulatedHost(t *testing.T) {
	t.Parallel()
	h := mustHost(t, "a100", 4)
	if len(h.GPUs) != 4 || h.GPUs[0].ComputeCapability != "8.0" || h.GPUs[0].MemoryTotalBytes != 80<<30 {
		t.Fatalf("%+v", h)
	}
	if _, err := validator.SimulatedHost("TPUv5", 1); !errors.Is(err, validator.ErrUnknownGPU) || !strings.Contains(err.Error(), "H100") {
		t.Fatalf("unknown GPU: %v", err)
	}
	for _, name := range validator.GPUModelNames() {
		if _, m, err := validator.LookupGPU(name); err != nil || m.MemoryBytes == 0 || m.ComputeCapability == "" {
			t.Errorf("%s: %+v %v", name, m, err)
		}
	}
}

// FuzzCheck feeds random parameter objects and spec files to Check (what
// `sgtune validate` runs): no panic; bad input is ErrBadInput; otherwise every
// rejection has a rule, set, reason and source, and a valid verdict has launch flags.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"tp_size": 2}`), []byte(""), "")
	f.Add([]byte(`{"tp_size": 8, "pp_size": 2, "attention_backend": "fa3"}`), []byte("rules: {sets: [seed, sglang, hardware]}\nmodel: {preset: deepseek-v3}\n"), "A10")
	f.Add([]byte(`{"quantization": "--host=0.0.0.0"}`), []byte("space: {quantization: [fp8, \"--host=0.0.0.0\"]}\n"), "H100")
	f.Add([]byte(`{"enable_two_batch_overlap": true}`), []byte("model: {shape: {params_b: 30, heads: 32, kv_heads: 4, moe: true}}\nrules: {sets: [sglang]}\n"), "B200")
	f.Fuzz(func(t *testing.T, params, specText []byte, gpu string) {
		var p events.Params
		if json.Unmarshal(params, &p) != nil {
			return
		}
		spec := study.Default()
		if len(specText) > 0 {
			var err error
			if spec, err = study.Parse("fuzz.yaml", specText); err != nil {
				return
			}
		}
		var opts validator.CheckOptions
		if h, err := validator.SimulatedHost(gpu, 1+len(gpu)%8); err == nil {
			opts.Fleet = []events.RunnerStatus{h}
		}
		v, err := validator.Check(spec, p, opts)
		if err != nil {
			if !errors.Is(err, validator.ErrBadInput) {
				t.Fatalf("error is not ErrBadInput: %v", err)
			}
			return
		}
		for _, r := range v.Rejections {
			if r.Rule == "" || r.RuleSet == "" || r.Reason == "" || r.Source == "" {
				t.Fatalf("incomplete rejection %+v", r)
			}
		}
		if v.Valid != (len(v.Rejections) == 0) || v.Valid != (len(v.LaunchArgs) > 0) {
			t.Fatalf("inconsistent verdict %+v", v)
		}
	})
}
