package model

import (
	"sort"
	"strings"
)

// Model is the shape of the served model: what the performance model needs
// to size weights, the KV cache and the FLOPs of a forward pass.
type Model struct {
	// Name is the preset key ("llama-3.1-8b").
	Name string
	// Architecture and ModelType are what the HF config says
	// ("LlamaForCausalLM", "llama").
	Architecture, ModelType string
	// ParamsB is the total parameter count in billions; ActiveParamsB the
	// parameters one token touches (equal for dense models).
	ParamsB, ActiveParamsB float64
	// ExpertParamsB is the part of ParamsB held in routed experts (MoE only).
	ExpertParamsB float64
	Layers        int
	Heads         int
	// KVHeads is the number of key/value heads (GQA); 1 for MLA.
	KVHeads int
	HeadDim int
	Hidden  int
	// Intermediate is the MLP width one token passes through (for MoE, top-k
	// experts' widths summed), used for activation memory.
	Intermediate int
	Vocab        int
	// ContextLength is the model's max_position_embeddings.
	ContextLength int
	// MoE models have Experts routed experts of which TopK serve each token.
	MoE           bool
	Experts, TopK int
	// MLA models (DeepSeek) cache one compressed latent per token and layer of
	// KVLoraRank+QKRopeDim elements instead of K and V per head.
	MLA                   bool
	KVLoraRank, QKRopeDim int
}

// DefaultModelName is the preset used when neither the model path nor
// SGTUNE_SIM_MODEL names a known model.
const DefaultModelName = "llama-3.1-8b"

var modelPresets = map[string]Model{
	"llama-3.1-8b": {Architecture: "LlamaForCausalLM", ModelType: "llama",
		ParamsB: 8.03, ActiveParamsB: 8.03, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128,
		Hidden: 4096, Intermediate: 14336, Vocab: 128256, ContextLength: 131072},
	"llama-3.2-3b": {Architecture: "LlamaForCausalLM", ModelType: "llama",
		ParamsB: 3.21, ActiveParamsB: 3.21, Layers: 28, Heads: 24, KVHeads: 8, HeadDim: 128,
		Hidden: 3072, Intermediate: 8192, Vocab: 128256, ContextLength: 131072},
	"llama-3.1-70b": {Architecture: "LlamaForCausalLM", ModelType: "llama",
		ParamsB: 70.6, ActiveParamsB: 70.6, Layers: 80, Heads: 64, KVHeads: 8, HeadDim: 128,
		Hidden: 8192, Intermediate: 28672, Vocab: 128256, ContextLength: 131072},
	"qwen2.5-7b": {Architecture: "Qwen2ForCausalLM", ModelType: "qwen2",
		ParamsB: 7.62, ActiveParamsB: 7.62, Layers: 28, Heads: 28, KVHeads: 4, HeadDim: 128,
		Hidden: 3584, Intermediate: 18944, Vocab: 152064, ContextLength: 32768},
	"qwen2.5-72b": {Architecture: "Qwen2ForCausalLM", ModelType: "qwen2",
		ParamsB: 72.7, ActiveParamsB: 72.7, Layers: 80, Heads: 64, KVHeads: 8, HeadDim: 128,
		Hidden: 8192, Intermediate: 29568, Vocab: 152064, ContextLength: 32768},
	"qwen3-30b-a3b": {Architecture: "Qwen3MoeForCausalLM", ModelType: "qwen3_moe",
		ParamsB: 30.5, ActiveParamsB: 3.3, ExpertParamsB: 28.9, Layers: 48, Heads: 32, KVHeads: 4,
		HeadDim: 128, Hidden: 2048, Intermediate: 8 * 768, Vocab: 151936, ContextLength: 40960,
		MoE: true, Experts: 128, TopK: 8},
	"deepseek-v2-lite": {Architecture: "DeepseekV2ForCausalLM", ModelType: "deepseek_v2",
		ParamsB: 15.7, ActiveParamsB: 2.4, ExpertParamsB: 14.1, Layers: 27, Heads: 16, KVHeads: 1,
		HeadDim: 192, Hidden: 2048, Intermediate: 6*1408 + 2*1408, Vocab: 102400, ContextLength: 163840,
		MoE: true, Experts: 64, TopK: 6, MLA: true, KVLoraRank: 512, QKRopeDim: 64},
}

// pathPatterns maps substrings of a lower-cased --model-path to presets;
// the first match wins, so more specific patterns come first.
var pathPatterns = []struct{ substr, preset string }{
	{"deepseek-v2-lite", "deepseek-v2-lite"},
	{"qwen3-30b-a3b", "qwen3-30b-a3b"},
	{"qwen2.5-72b", "qwen2.5-72b"},
	{"qwen2.5-7b", "qwen2.5-7b"},
	{"llama-3.3-70b", "llama-3.1-70b"},
	{"llama-3.1-70b", "llama-3.1-70b"},
	{"llama-3-70b", "llama-3.1-70b"},
	{"llama-3.2-3b", "llama-3.2-3b"},
	{"llama-3.1-8b", "llama-3.1-8b"},
	{"llama-3-8b", "llama-3.1-8b"},
}

// ModelPreset returns the named preset (case-insensitive).
func ModelPreset(name string) (Model, bool) {
	key := strings.ToLower(strings.TrimSpace(name))
	m, ok := modelPresets[key]
	if !ok {
		return Model{}, false
	}
	m.Name = key
	return m, true
}

// ModelForPath recognises common Hugging Face paths ("meta-llama/Llama-3.1-8B-Instruct",
// "/models/Qwen2.5-7B-Instruct", "deepseek-ai/DeepSeek-V2-Lite-Chat").
func ModelForPath(path string) (Model, bool) {
	p := strings.ToLower(path)
	p = strings.ReplaceAll(p, "_", "-")
	p = strings.ReplaceAll(p, "meta-llama-3", "llama-3")
	for _, pat := range pathPatterns {
		if strings.Contains(p, pat.substr) {
			return ModelPreset(pat.preset)
		}
	}
	return Model{}, false
}

// ModelPresetNames lists the model presets, sorted.
func ModelPresetNames() []string {
	names := make([]string, 0, len(modelPresets))
	for n := range modelPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// kvElemsPerTokenLayer is the number of KV-cache elements one token needs in
// one layer on one rank whose attention is split tpAttn ways.
func (m Model) kvElemsPerTokenLayer(tpAttn int) float64 {
	if m.MLA {
		// The latent is not sharded across TP ranks: every rank holds it whole.
		return float64(m.KVLoraRank + m.QKRopeDim)
	}
	kv := m.KVHeads
	perRank := 1
	if kv >= tpAttn {
		perRank = kv / tpAttn
	}
	return float64(2 * perRank * m.HeadDim)
}
