package study

import (
	"fmt"
	"sort"
	"strings"
)

// ModelShape is the shape of the served model, as far as the validator's
// sglang and hardware rules need it: how attention heads shard over tensor
// parallelism, whether the model is a mixture of experts or uses multi-head
// latent attention, and how big its weights are. A spec names a preset
// (model.preset) or describes its own model under model.shape.
type ModelShape struct {
	// ParamsB is the total parameter count in billions (every expert of a MoE model).
	ParamsB float64 `yaml:"params_b" json:"params_b"`
	// Layers is num_hidden_layers (0: unknown).
	Layers int `yaml:"layers" json:"layers,omitempty"`
	// Heads is num_attention_heads.
	Heads int `yaml:"heads" json:"heads"`
	// KVHeads is num_key_value_heads (equal to Heads without grouped-query attention).
	KVHeads int `yaml:"kv_heads" json:"kv_heads"`
	// MoE marks a mixture-of-experts model; Experts is its routed expert count (0: unknown).
	MoE     bool `yaml:"moe" json:"moe,omitempty"`
	Experts int  `yaml:"experts" json:"experts,omitempty"`
	// MLA marks multi-head latent attention (DeepSeek-V2/V3 style).
	MLA bool `yaml:"mla" json:"mla,omitempty"`
	// Attention names a special attention variant some backends need: "" (none),
	// "dsa" (DeepSeek-V3.2 sparse attention), "dual_chunk" (dual-chunk Qwen
	// long-context models).
	Attention string `yaml:"attention" json:"attention,omitempty"`
}

// AttentionVariants are the values ModelShape.Attention accepts.
var AttentionVariants = []string{"", "dsa", "dual_chunk"}

// modelPresets are common models' shapes, from each model's config.json on
// Hugging Face (num_attention_heads, num_key_value_heads, num_hidden_layers,
// n_routed_experts / num_experts; DeepSeek models list as many KV heads as heads).
var modelPresets = map[string]ModelShape{
	"llama-3.2-3b":     {ParamsB: 3.21, Layers: 28, Heads: 24, KVHeads: 8},
	"llama-3.1-8b":     {ParamsB: 8.03, Layers: 32, Heads: 32, KVHeads: 8},
	"llama-3.1-70b":    {ParamsB: 70.6, Layers: 80, Heads: 64, KVHeads: 8},
	"qwen2.5-7b":       {ParamsB: 7.62, Layers: 28, Heads: 28, KVHeads: 4},
	"qwen2.5-72b":      {ParamsB: 72.7, Layers: 80, Heads: 64, KVHeads: 8},
	"qwen3-30b-a3b":    {ParamsB: 30.5, Layers: 48, Heads: 32, KVHeads: 4, MoE: true, Experts: 128},
	"deepseek-v2-lite": {ParamsB: 15.7, Layers: 27, Heads: 16, KVHeads: 16, MoE: true, Experts: 64, MLA: true},
	"deepseek-v3":      {ParamsB: 671, Layers: 61, Heads: 128, KVHeads: 128, MoE: true, Experts: 256, MLA: true},
	"deepseek-v3.2":    {ParamsB: 671, Layers: 61, Heads: 128, KVHeads: 128, MoE: true, Experts: 256, MLA: true, Attention: "dsa"},
}

// modelPathHints map a fragment of a lower-cased model path to a preset, for
// specs that name neither a preset nor a shape; the first match wins, so the
// more specific fragments come first.
var modelPathHints = []struct{ fragment, preset string }{
	{"llama-3.2-3b", "llama-3.2-3b"},
	{"llama-3.1-8b", "llama-3.1-8b"},
	{"llama-3.1-70b", "llama-3.1-70b"},
	{"llama-3.3-70b", "llama-3.1-70b"},
	{"qwen2.5-72b", "qwen2.5-72b"},
	{"qwen2.5-7b", "qwen2.5-7b"},
	{"qwen3-30b-a3b", "qwen3-30b-a3b"},
	{"deepseek-v2-lite", "deepseek-v2-lite"},
	{"deepseek-v3.2", "deepseek-v3.2"},
	{"deepseek-v3", "deepseek-v3"},
	{"deepseek-r1", "deepseek-v3"},
}

// ModelPreset returns the shape of a preset (case-insensitive).
func ModelPreset(name string) (ModelShape, bool) {
	s, ok := modelPresets[strings.ToLower(strings.TrimSpace(name))]
	return s, ok
}

// ModelPresetNames lists the known presets, sorted.
func ModelPresetNames() []string {
	out := make([]string, 0, len(modelPresets))
	for k := range modelPresets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ResolveShape returns the served model's shape and a name for it in
// messages: model.shape when given (named by the preset, else the model
// path), else the preset, else a preset recognised in the model path. ok is
// false when the shape is unknown; the validator then skips the rules that
// need it.
func (m Model) ResolveShape() (name string, shape ModelShape, ok bool) {
	preset := strings.ToLower(strings.TrimSpace(m.Preset))
	if m.Shape != nil {
		name = preset
		if name == "" {
			name = m.Path
		}
		return name, *m.Shape, true
	}
	if preset == "" {
		p := strings.ToLower(m.Path)
		for _, h := range modelPathHints {
			if strings.Contains(p, h.fragment) {
				preset = h.preset
				break
			}
		}
	}
	s, ok := modelPresets[preset]
	if !ok {
		return "", ModelShape{}, false
	}
	return preset, s, true
}

// validateModelShape checks model.preset and model.shape.
func (m Model) validateModelShape() error {
	if m.Preset != "" && m.Shape == nil {
		if _, ok := ModelPreset(m.Preset); !ok {
			return fmt.Errorf("model.preset: unknown preset %q (known: %s; or describe the model under model.shape)",
				m.Preset, strings.Join(ModelPresetNames(), ", "))
		}
	}
	if m.Shape == nil {
		return nil
	}
	return m.Shape.Validate()
}

// Validate checks a described model shape and names the bad key.
func (s ModelShape) Validate() error {
	switch {
	case !(s.ParamsB > 0) || s.ParamsB > 1e5:
		return fmt.Errorf("model.shape.params_b: want the parameter count in billions (> 0), got %v", s.ParamsB)
	case s.Heads < 1:
		return fmt.Errorf("model.shape.heads: want num_attention_heads (≥ 1), got %d", s.Heads)
	case s.KVHeads < 1:
		return fmt.Errorf("model.shape.kv_heads: want num_key_value_heads (≥ 1), got %d", s.KVHeads)
	case s.KVHeads > s.Heads:
		return fmt.Errorf("model.shape.kv_heads: %d KV heads exceed the %d attention heads", s.KVHeads, s.Heads)
	case !s.MLA && s.Heads%s.KVHeads != 0:
		return fmt.Errorf("model.shape.kv_heads: %d attention heads do not group evenly over %d KV heads", s.Heads, s.KVHeads)
	case s.Layers < 0:
		return fmt.Errorf("model.shape.layers: must not be negative, got %d", s.Layers)
	case s.Experts < 0:
		return fmt.Errorf("model.shape.experts: must not be negative, got %d", s.Experts)
	case s.Experts > 0 && !s.MoE:
		return fmt.Errorf("model.shape.experts: %d experts given but moe is false", s.Experts)
	}
	for _, a := range AttentionVariants {
		if s.Attention == a {
			return nil
		}
	}
	return fmt.Errorf("model.shape.attention: unknown attention variant %q (known: none, dsa, dual_chunk)", s.Attention)
}
