package rules

import (
	"encoding/json"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// fuzzSpecs seed the spec half of FuzzEvaluate: YAML study files that switch
// rule sets, versions and model shapes, plus broken ones.
var fuzzSpecs = []string{
	"",
	"rules: {sets: [seed, sglang, hardware]}\n",
	"rules: {sets: [sglang, hardware], sglang_version: main}\nmodel: {preset: deepseek-v3}\n",
	"rules: {sets: [sglang], disabled: [sglang.tp_kv_heads]}\nmodel: {path: org/m, shape: {params_b: 47, heads: 32, kv_heads: 8, moe: true, experts: 8}}\n",
	"model: {preset: qwen2.5-7b, static_args: {mem_fraction_static: 0.5, enable_dp_attention: true}}\nspace: {tp_size: [1, 2, 4, 8], dp_size: [1, 2, 4]}\n",
	"model: {static_args: {detokenizer_worker_num: 2, served_model_name: \"a b\"}}\nrules: {sets: [seed]}\n",
	"space: {attention_backend: [fa3, fa4, flashmla, dsa, trtllm_mha, null], page_size: [null, 1, 64]}\nmodel: {preset: deepseek-v3.2}\nrules: {sets: [sglang, hardware]}\n",
	"device_num: 2\nspace: {tp_size: [1]}\n",
	"model: {shape: {params_b: -1}}\n",
	"{\"rules\": {\"sets\": [\"hardware\"]}, \"model\": {\"preset\": \"llama-3.1-70b\"}}",
}

// FuzzEvaluate feeds random parameter objects and random spec files through
// every rule set, the canonical form and the launch args: no panic, every
// rejection names its rule, set, reason and source, and a candidate that
// passes never yields a launch argument that could read as another flag.
func FuzzEvaluate(f *testing.F) {
	params := []string{
		`{}`,
		`{"tp_size": 8, "dp_size": 8, "pp_size": 8, "chunked_prefill_size": 512, "cuda_graph_max_bs": 96}`,
		`{"tp_size": 0, "dp_size": -3, "pp_size": 1e300, "page_size": 0, "chunked_prefill_size": -1, "enable_mixed_chunk": true}`,
		`{"attention_backend": "--api-key", "quantization": "a b", "chat_template": "x=y", "bogus": null}`,
		`{"attention_backend": "flashinfer --api-key x", "served_model_name": "--host=0.0.0.0"}`,
		`{"attention_backend": "fa4", "prefill_attention_backend": "flashmla", "decode_attention_backend": "trtllm_mha", "page_size": 3}`,
		`{"enable_two_batch_overlap": true, "disable_overlap_schedule": "yes", "tp_size": "2", "dp_size": 2.5}`,
		`{"enable_dp_attention": true, "dp_size": 3, "tp_size": 4, "enable_dp_lm_head": true, "moe_a2a_backend": "deepep"}`,
		`{"mem_fraction_static": 0, "quantization": "fp8", "speculative_algorithm": "EAGLE", "kv_cache_dtype": "fp8_e5m2"}`,
		`{"nnodes": 3, "tp_size": 4, "schedule_policy": "routing-key", "detokenizer_worker_num": 0, "attention_backend": "dual_chunk_flash_attn"}`,
	}
	for i, p := range params {
		f.Add([]byte(p), []byte(fuzzSpecs[i%len(fuzzSpecs)]), uint8(i*37))
	}
	fleets := [][]Host{nil, {host("h", h100, 8)}, {host("b", b200, 2), host("a", a100, 4)}, {{Name: "empty"}},
		{host("m", GPU{Name: "AMD Instinct MI300X", MemoryBytes: 192e9}, 8)}}
	f.Fuzz(func(t *testing.T, data, specText []byte, pick uint8) {
		var raw events.Params
		if err := json.Unmarshal(data, &raw); err != nil {
			return
		}
		spec := study.Default()
		spec.Rules.Sets = []string{SetSeed, SetSGLang, SetHardware}
		if len(specText) > 0 {
			parsed, err := study.Parse("fuzz.yaml", specText)
			if err != nil {
				return // the spec loader rejects it with an error; nothing to validate
			}
			spec = parsed
		}
		if pick&0x10 != 0 {
			spec.Rules.SGLangVersion = "main"
		}
		in := NewInput(&spec, raw, int(pick%5), fleets[int(pick>>2)%len(fleets)])
		in.Baseline = pick&0x20 != 0
		rejections := Evaluate(&spec, in)
		for _, r := range rejections {
			if r.Rule == "" || r.RuleSet == "" || r.Reason == "" || r.Source == "" {
				t.Fatalf("incomplete rejection %+v for %s", r, data)
			}
		}
		if h := CanonicalHash(in); len(h) != 32 {
			t.Fatalf("bad hash %q", h)
		}
		if len(rejections) > 0 {
			return
		}
		args, err := spec.LaunchArgs(in.Params)
		if err != nil {
			t.Fatalf("accepted candidate %s has no launch command: %v", data, err)
		}
		// Walk the argv as argparse would: every flag known, every non-boolean
		// flag followed by its value, and no string value that could read as a flag.
		for i := 0; i < len(args); i++ {
			def, ok := study.LookupFlag(args[i])
			if !ok {
				t.Fatalf("accepted candidate %s: launch args %q: %q is not a flag sgtune knows", data, args, args[i])
			}
			if def.Kind == study.KindBool {
				continue
			}
			i++
			if i == len(args) {
				t.Fatalf("launch args %q: %s has no value", args, def.Flag)
			}
			if def.Kind == study.KindString && def.Name != "model_path" && unsafeString(args[i]) != "" {
				t.Fatalf("accepted candidate %s yields the unsafe value %q in %q", data, args[i], args)
			}
		}
	})
}
