package rules

import (
	"sort"
	"strings"
)

// presets are model shapes the sglang and hardware rules know, by preset name
// (spec.model.preset). Figures from each model's config.json on Hugging Face.
var presets = map[string]Model{
	"llama-3.1-8b":     {Heads: 32, KVHeads: 8, ParamsB: 8.03},
	"llama-3.1-70b":    {Heads: 64, KVHeads: 8, ParamsB: 70.6},
	"qwen2.5-7b":       {Heads: 28, KVHeads: 4, ParamsB: 7.62},
	"qwen3-30b-a3b":    {Heads: 32, KVHeads: 4, ParamsB: 30.5, MoE: true},
	"deepseek-v2-lite": {Heads: 16, KVHeads: 16, ParamsB: 15.7, MoE: true, MLA: true},
	"deepseek-v3":      {Heads: 128, KVHeads: 128, ParamsB: 671, MoE: true, MLA: true},
}

// pathHints map a fragment of a lower-cased model path to a preset, for specs
// that name no preset.
var pathHints = []struct{ fragment, preset string }{
	{"llama-3.1-8b", "llama-3.1-8b"},
	{"llama-3.1-70b", "llama-3.1-70b"},
	{"qwen2.5-7b", "qwen2.5-7b"},
	{"qwen3-30b-a3b", "qwen3-30b-a3b"},
	{"deepseek-v2-lite", "deepseek-v2-lite"},
	{"deepseek-v3", "deepseek-v3"},
	{"deepseek-r1", "deepseek-v3"},
}

// LookupPreset returns the shape of preset (case-insensitive), or, when preset
// is empty, of the preset whose name appears in the model path. ok is false
// (and the Model unknown) otherwise: model-dependent rules are then skipped.
func LookupPreset(preset, modelPath string) (Model, bool) {
	name := strings.ToLower(strings.TrimSpace(preset))
	if name == "" {
		p := strings.ToLower(modelPath)
		for _, h := range pathHints {
			if strings.Contains(p, h.fragment) {
				name = h.preset
				break
			}
		}
	}
	m, ok := presets[name]
	if !ok {
		return Model{}, false
	}
	m.Name = name
	return m, true
}

// PresetNames lists the known presets, sorted.
func PresetNames() []string {
	out := make([]string, 0, len(presets))
	for k := range presets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
