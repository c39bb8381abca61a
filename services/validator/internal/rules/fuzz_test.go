package rules

import (
	"encoding/json"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// FuzzEvaluate feeds random parameter objects through every rule set and the
// canonical hash: no panic, and every rejection names its rule, its set and a reason.
func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"tp_size": 8, "dp_size": 8, "pp_size": 8, "chunked_prefill_size": 512, "cuda_graph_max_bs": 96}`,
		`{"tp_size": 0, "dp_size": -3, "pp_size": 1e300, "page_size": 0, "chunked_prefill_size": -1, "enable_mixed_chunk": true}`,
		`{"attention_backend": "--api-key", "quantization": "a b", "chat_template": "x=y", "bogus": null}`,
		`{"attention_backend": "fa4", "prefill_attention_backend": "flashmla", "decode_attention_backend": "trtllm_mha", "page_size": 3}`,
		`{"enable_two_batch_overlap": true, "disable_overlap_schedule": "yes", "tp_size": "2", "dp_size": 2.5}`,
		`{"enable_dp_attention": true, "dp_size": 3, "tp_size": 4, "enable_dp_lm_head": true, "moe_a2a_backend": "deepep"}`,
		`{"mem_fraction_static": 0, "quantization": "fp8", "speculative_algorithm": "EAGLE", "kv_cache_dtype": "fp8_e5m2"}`,
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(3))
	}
	all := study.Default()
	all.Rules.Sets = []string{SetSeed, SetSGLang, SetHardware}
	fleets := [][]Host{nil, {host("h", h100, 8)}, {host("b", b200, 2), host("a", a100, 4)}, {{Name: "empty"}}}
	models := []string{"llama-3.1-8b", "deepseek-v3", "qwen2.5-7b", "unknown"}
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		var raw events.Params
		if err := json.Unmarshal(data, &raw); err != nil {
			return
		}
		spec := all
		spec.Model.Preset = models[int(pick)%len(models)]
		if pick&0x10 != 0 {
			spec.Rules.SGLangVersion = "main"
		}
		in := NewInput(&spec, raw, int(pick%5), fleets[int(pick>>2)%len(fleets)])
		in.Baseline = pick&0x20 != 0
		for _, r := range Evaluate(&spec, in) {
			if r.Rule == "" || r.RuleSet == "" || r.Reason == "" {
				t.Fatalf("incomplete rejection %+v for %s", r, data)
			}
		}
		if h := CanonicalHash(in); len(h) != 32 {
			t.Fatalf("bad hash %q", h)
		}
	})
}
