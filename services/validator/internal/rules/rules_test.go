package rules

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// baseParams is a valid candidate of the seed space.
func baseParams() events.Params {
	return events.Params{
		"tp_size": 1, "attention_backend": "flashinfer", "chunked_prefill_size": 4096, "max_prefill_tokens": 16384,
		"dp_size": 1, "schedule_policy": "fcfs", "pp_size": 1, "decode_attention_backend": nil,
		"prefill_attention_backend": nil, "page_size": nil, "cuda_graph_max_bs": nil, "enable_mixed_chunk": false,
		"disable_overlap_schedule": false, "enable_torch_compile": false, "num_continuous_decode_steps": 1,
		"enable_two_batch_overlap": false, "tokenizer_worker_num": 1, "sampling_backend": nil,
	}
}

var (
	h100 = GPU{Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30, CCMajor: 9}
	a100 = GPU{Name: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 << 30, CCMajor: 8}
	b200 = GPU{Name: "NVIDIA B200", MemoryBytes: 180 << 30, CCMajor: 10}
)

func host(name string, g GPU, n int) Host {
	return Host{Name: name, GPUs: slices.Repeat([]GPU{g}, n)}
}

type mod func(in *Input)

// set overlays candidate parameters.
func set(kv ...any) mod {
	return func(in *Input) {
		for i := 0; i+1 < len(kv); i += 2 {
			in.Params[kv[i].(string)] = kv[i+1]
		}
	}
}

func static(kv ...any) mod {
	return func(in *Input) {
		in.Static = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			in.Static[kv[i].(string)] = kv[i+1]
		}
	}
}

func fleet(hosts ...Host) mod { return func(in *Input) { in.Fleet = hosts } }
func preset(name string) mod  { return func(in *Input) { in.Model, _ = LookupPreset(name, "") } }
func version(v string) mod    { return func(in *Input) { in.Version = v } }
func raw(p events.Params) mod { return func(in *Input) { in.Raw = p } }
func baseline() mod           { return func(in *Input) { in.Baseline = true } }
func drop(names ...string) mod {
	return func(in *Input) {
		for _, n := range names {
			delete(in.Params, n)
		}
	}
}
func deviceNum(n int) mod     { return func(in *Input) { in.DeviceNum = n } }
func space(s study.Space) mod { return func(in *Input) { in.Space = s } }

func input(mods ...mod) Input {
	m, _ := LookupPreset("llama-3.1-8b", "")
	in := Input{
		Params:    baseParams(),
		Space:     study.SeedSpace(),
		ModelPath: "meta-llama/Llama-3.1-8B-Instruct",
		Model:     m,
		Version:   "v0.5.5",
		DeviceNum: 8,
	}
	for _, f := range mods {
		f(&in)
	}
	return in
}

func TestRule_Check(t *testing.T) {
	t.Parallel()
	h100x8 := fleet(host("h100-a", h100, 8))
	tests := []struct {
		name        string
		rule        string
		given       Input
		expectedMsg string // "" = accepted; otherwise a fragment of the reason
	}{
		// seed
		{"fits", "seed.gpu_count", input(set("tp_size", 2, "pp_size", 2, "dp_size", 2)), ""},
		{"too many", "seed.gpu_count", input(set("tp_size", 2, "pp_size", 4, "dp_size", 2)),
			"tp_size × pp_size × dp_size = 2 × 4 × 2 = 16 GPUs, but device_num allows 8."},
		{"dp attention counts tp×pp", "seed.gpu_count", input(static("enable_dp_attention", true), set("tp_size", 8, "dp_size", 8)), ""},
		{"device_num 4", "seed.gpu_count", input(deviceNum(4), set("tp_size", 8)), "= 8 GPUs, but device_num allows 4"},
		{"pp 8 dp 4", "seed.pp_dp_cap", input(set("pp_size", 8, "dp_size", 4)), ""},
		{"pp 8 dp 8", "seed.pp_dp_cap", input(set("pp_size", 8, "dp_size", 8)), "pp_size = 8 and dp_size = 8 are both above 4"},
		{"chunk below", "seed.chunk_le_prefill", input(set("chunked_prefill_size", 8192, "max_prefill_tokens", 8192)), ""},
		{"chunk None", "seed.chunk_le_prefill", input(set("chunked_prefill_size", nil, "max_prefill_tokens", 4096)), ""},
		{"chunk above", "seed.chunk_le_prefill", input(set("chunked_prefill_size", 16384, "max_prefill_tokens", 8192)),
			"chunked_prefill_size = 16384 exceeds max_prefill_tokens = 8192."},
		{"mpt None is 16384", "seed.chunk_le_prefill", input(set("chunked_prefill_size", 32768, "max_prefill_tokens", nil)), "max_prefill_tokens = 16384"},
		{"chunk per dp ok", "seed.chunk_per_dp", input(set("chunked_prefill_size", 1024, "dp_size", 4)), ""},
		{"chunk None dp 8", "seed.chunk_per_dp", input(set("chunked_prefill_size", nil, "dp_size", 8)), ""},
		{"chunk per dp low", "seed.chunk_per_dp", input(set("chunked_prefill_size", 512, "dp_size", 4)),
			"chunked_prefill_size / dp_size = 512 / 4 = 128 tokens per DP rank, below the minimum of 256."},
		{"tbo with overlap", "seed.tbo_needs_overlap", input(set("enable_two_batch_overlap", true)), ""},
		{"tbo without overlap", "seed.tbo_needs_overlap", input(set("enable_two_batch_overlap", true, "disable_overlap_schedule", true)),
			"disable_overlap_schedule is true"},
		{"small chunk small bs", "seed.small_chunk_graph_bs", input(set("chunked_prefill_size", 2048, "cuda_graph_max_bs", 32)), ""},
		{"small chunk bs None", "seed.small_chunk_graph_bs", input(set("chunked_prefill_size", 512, "cuda_graph_max_bs", nil)), ""},
		{"chunk None bs 96", "seed.small_chunk_graph_bs", input(set("chunked_prefill_size", nil, "cuda_graph_max_bs", 96)), ""},
		{"small chunk big bs", "seed.small_chunk_graph_bs", input(set("chunked_prefill_size", 1024, "cuda_graph_max_bs", 64)),
			"chunked_prefill_size = 1024 is at most 2048, so cuda_graph_max_bs must be at most 32, but it is 64."},
		{"dp 4 bs 64", "seed.dp_graph_bs", input(set("dp_size", 4, "cuda_graph_max_bs", 64)), ""},
		{"dp 8 bs None", "seed.dp_graph_bs", input(set("dp_size", 8, "cuda_graph_max_bs", nil)), ""},
		{"dp 4 bs 96", "seed.dp_graph_bs", input(set("dp_size", 4, "cuda_graph_max_bs", 96)),
			"dp_size = 4 is at least 4, so cuda_graph_max_bs must be at most 64, but it is 96."},

		// safety
		{"known", "safety.unknown_param", input(), ""},
		{"typo", "safety.unknown_param", input(raw(events.Params{"tp_sise": 2})), `"tp_sise" is not a launch_server argument sgtune knows (did you mean "tp_size"?)`},
		{"not searched", "safety.unknown_param", input(raw(events.Params{"mem_fraction_static": 0.5})), "mem_fraction_static is not in this study's search space"},
		{"runner owned", "safety.unknown_param", input(raw(events.Params{"port": 1234})), "port is set by sgtune itself"},
		{"types ok", "safety.value_type", input(raw(events.Params{"tp_size": 2.0, "enable_mixed_chunk": true})), ""},
		{"bad int", "safety.value_type", input(raw(events.Params{"tp_size": 2.5})), "tp_size: want an integer, got 2.5"},
		{"bad choice", "safety.value_type", input(raw(events.Params{"attention_backend": "magic"})), `"magic" is not one of SGLang's choices`},
		{"in domain", "safety.domain", input(), ""},
		{"baseline all None", "safety.domain", input(baseline(), func(in *Input) { in.Params = events.Params{} }), ""},
		{"None is default in space", "safety.domain", input(set("tp_size", nil, "max_prefill_tokens", nil)), ""},
		{"missing default in space", "safety.domain", input(drop("tp_size")), ""},
		{"out of domain", "safety.domain", input(set("tp_size", 3)), "tp_size = 3 is not among the study's values (1, 2, 4, 8)"},
		{"None not allowed", "safety.domain", input(set("schedule_policy", nil), space(study.Space{{Name: "schedule_policy", Values: []any{"lpm"}}})),
			"schedule_policy is None, but the study only allows lpm"},
		{"release flags", "safety.version_flags", input(static("tokenizer_path", "x")), ""},
		{"main flag on main", "safety.version_flags", input(version("main"), static("detokenizer_worker_num", 2), set("attention_backend", "hpc_ops")), ""},
		{"main flag on release", "safety.version_flags", input(static("detokenizer_worker_num", 2)),
			"static arg detokenizer_worker_num (--detokenizer-worker-num) is not a flag SGLang v0.5.5 knows; only main has it"},
		{"main choice on release", "safety.version_flags", input(set("schedule_policy", "routing-key")),
			"schedule_policy = routing-key is not one of SGLang v0.5.5's choices for --schedule-policy"},
		{"release choice on main", "safety.version_flags", input(version("main"), static("load_balance_method", "shortest_queue")), "only releases have it"},
		{"plain strings", "safety.flag_injection", input(static("served_model_name", "llama")), ""},
		{"leading dash", "safety.flag_injection", input(raw(events.Params{"attention_backend": "--api-key"})), `attention_backend = "--api-key" starts with '-'`},
		{"whitespace", "safety.flag_injection", input(raw(events.Params{"quantization": "fp8 --x"})), "contains whitespace"},
		{"equals", "safety.flag_injection", input(raw(events.Params{"quantization": "a=b"})), "contains '='"},
		{"nul", "safety.flag_injection", input(static("chat_template", "a\x00b")), "static arg chat_template"},

		// sglang
		{"sizes ok", "sglang.positive_sizes", input(), ""},
		{"zero tp", "sglang.positive_sizes", input(set("tp_size", 0, "page_size", -1)), "tp_size = 0, page_size = -1 must be at least 1"},
		{"heads divide", "sglang.tp_divides_heads", input(preset("qwen2.5-7b"), set("tp_size", 4)), ""},
		{"unknown model", "sglang.tp_divides_heads", input(func(in *Input) { in.Model = Model{} }, set("tp_size", 8)), ""},
		{"heads indivisible", "sglang.tp_divides_heads", input(preset("qwen2.5-7b"), set("tp_size", 8)),
			"qwen2.5-7b has 28 attention heads, which tp_size = 8 does not divide"},
		{"kv split", "sglang.tp_kv_heads", input(set("tp_size", 8)), ""},
		{"kv replicated", "sglang.tp_kv_heads", input(preset("qwen2.5-7b"), set("tp_size", 8)), ""},
		{"kv not split", "sglang.tp_kv_heads", input(func(in *Input) { in.Model = Model{Name: "x", Heads: 24, KVHeads: 6} }, set("tp_size", 4)),
			"x has 6 KV heads, which tp_size = 4 does not divide evenly."},
		{"kv not replicated", "sglang.tp_kv_heads", input(func(in *Input) { in.Model = Model{Name: "x", Heads: 24, KVHeads: 4} }, set("tp_size", 6)),
			"cannot be replicated evenly over tp_size = 6"},
		{"dp attention divides", "sglang.dp_attention_tp", input(static("enable_dp_attention", true), set("tp_size", 8, "dp_size", 4)), ""},
		{"dp attention indivisible", "sglang.dp_attention_tp", input(static("enable_dp_attention", true), set("tp_size", 2, "dp_size", 4)),
			"dp_size = 4 attention groups out of tp_size = 2"},
		{"dp lm head with dp attention", "sglang.dp_lm_head", input(static("enable_dp_attention", true, "enable_dp_lm_head", true)), ""},
		{"dp lm head alone", "sglang.dp_lm_head", input(static("enable_dp_lm_head", true)), "enable_dp_lm_head is true but enable_dp_attention is false"},
		{"fa4 prefill", "sglang.fa4_prefill_only", input(set("attention_backend", nil), static("prefill_attention_backend", "fa4")), ""},
		{"fa4 on main", "sglang.fa4_prefill_only", input(version("main"), set("attention_backend", "fa4")), ""},
		{"fa4 everywhere", "sglang.fa4_prefill_only", input(set("attention_backend", "fa4")), "attention_backend = fa4, but SGLang v0.5.5 supports fa4 only for prefill"},
		{"mla on mla", "sglang.backend_model_type", input(preset("deepseek-v3"), set("attention_backend", "flashmla")), ""},
		{"mla on llama", "sglang.backend_model_type", input(set("attention_backend", "flashmla")), "attention_backend = flashmla implements only multi-head latent attention"},
		{"mha on mla", "sglang.backend_model_type", input(preset("deepseek-v2-lite"), set("decode_attention_backend", "trtllm_mha")), "decode_attention_backend = trtllm_mha implements only ordinary multi-head attention"},
		{"torch_native on mla", "sglang.backend_model_type", input(preset("deepseek-v3"), set("attention_backend", "torch_native")), "torch_native implements only ordinary"},
		{"torch_native on llama", "sglang.backend_model_type", input(set("attention_backend", "torch_native")), ""},
		{"custom mla shape", "sglang.backend_model_type", input(func(in *Input) { in.Model = Model{Name: "org/m", Heads: 16, KVHeads: 16, MLA: true} }, set("attention_backend", "flashmla")), ""},
		{"dsa on v3.2", "sglang.backend_model_variant", input(preset("deepseek-v3.2"), set("attention_backend", "dsa")), ""},
		{"nsa on v3", "sglang.backend_model_variant", input(preset("deepseek-v3"), set("attention_backend", "nsa")), "nsa implements DeepSeek sparse attention (DeepSeek-V3.2), which deepseek-v3 does not have"},
		{"dual chunk model", "sglang.backend_model_variant", input(func(in *Input) { in.Model = Model{Name: "qwen-1m", Heads: 28, KVHeads: 4, Attention: "dual_chunk"} }, set("attention_backend", "dual_chunk_flash_attn")), ""},
		{"dual chunk on llama", "sglang.backend_model_variant", input(set("prefill_attention_backend", "dual_chunk_flash_attn")), "needs a model with dual-chunk attention"},
		{"single node", "sglang.multi_node", input(set("tp_size", 8, "dp_size", 2)), ""},
		{"two nodes even", "sglang.multi_node", input(static("nnodes", 2), set("tp_size", 8, "pp_size", 2)), ""},
		{"two nodes odd", "sglang.multi_node", input(static("nnodes", 2), set("tp_size", 1)), "nnodes = 2 does not divide tp_size × pp_size = 1 × 1 = 1"},
		{"two nodes dp", "sglang.multi_node", input(static("nnodes", 2), set("tp_size", 2, "dp_size", 2)), "dp_size = 2 with nnodes = 2 needs enable_dp_attention"},
		{"chunk multiple", "sglang.chunk_page_multiple", input(set("chunked_prefill_size", 512, "page_size", 256)), ""},
		{"chunk forced page ok", "sglang.chunk_page_multiple", input(preset("deepseek-v3"), set("chunked_prefill_size", 8192, "attention_backend", "cutlass_mla")), ""},
		{"chunk not multiple", "sglang.chunk_page_multiple", input(static("chunked_prefill_size", 3000), drop("chunked_prefill_size"), set("page_size", 64)),
			"chunked_prefill_size = 3000 is not a multiple of page_size = 64"},
		{"chunk vs forced page", "sglang.chunk_page_multiple", input(preset("deepseek-v3"), drop("chunked_prefill_size"), static("chunked_prefill_size", 3000), set("attention_backend", "flashmla")),
			"the page size 64 that the flashmla backend forces"},
		{"mixed with chunking", "sglang.mixed_chunk_needs_chunking", input(set("enable_mixed_chunk", true)), ""},
		{"mixed without chunking", "sglang.mixed_chunk_needs_chunking", input(set("enable_mixed_chunk", true, "chunked_prefill_size", -1)),
			"chunked_prefill_size = -1 disables chunked prefill"},
		{"pp mixed on main", "sglang.pp_mixed_chunk", input(version("main"), set("pp_size", 2, "enable_mixed_chunk", true)), ""},
		{"pp mixed on release", "sglang.pp_mixed_chunk", input(set("pp_size", 2, "enable_mixed_chunk", true)), "pp_size = 2 with enable_mixed_chunk"},
		{"pp without spec", "sglang.pp_speculative", input(set("pp_size", 2)), ""},
		{"pp with spec", "sglang.pp_speculative", input(set("pp_size", 2), static("speculative_algorithm", "EAGLE")), "speculative_algorithm = EAGLE"},
		{"mixed without spec", "sglang.mixed_chunk_speculative", input(set("enable_mixed_chunk", true)), ""},
		{"mixed with spec", "sglang.mixed_chunk_speculative", input(set("enable_mixed_chunk", true), static("speculative_algorithm", "NGRAM")), "speculative_algorithm = NGRAM"},
		{"flex without spec", "sglang.flex_speculative", input(set("attention_backend", "flex_attention")), ""},
		{"flex with spec", "sglang.flex_speculative", input(set("attention_backend", "flex_attention"), static("speculative_algorithm", "EAGLE")), "flex attention does not support"},
		{"tbo on moe", "sglang.tbo_needs_moe", input(preset("deepseek-v3"), set("enable_two_batch_overlap", true)), ""},
		{"tbo on dense", "sglang.tbo_needs_moe", input(set("enable_two_batch_overlap", true)), "llama-3.1-8b is a dense model"},
		{"tbo with deepep", "sglang.tbo_a2a_backend", input(set("enable_two_batch_overlap", true), static("moe_a2a_backend", "deepep")), ""},
		{"tbo main dp attention", "sglang.tbo_a2a_backend", input(version("main"), set("enable_two_batch_overlap", true), static("enable_dp_attention", true)), ""},
		{"tbo no a2a", "sglang.tbo_a2a_backend", input(set("enable_two_batch_overlap", true)), "moe_a2a_backend is none"},
		{"priority fcfs", "sglang.priority_policy", input(static("enable_priority_scheduling", true)), ""},
		{"priority lpm", "sglang.priority_policy", input(static("enable_priority_scheduling", true), set("schedule_policy", "lpm")), "schedule_policy = lpm"},
		{"compile padding release", "sglang.torch_compile_padding", input(set("enable_torch_compile", true), static("disable_cuda_graph_padding", true)), ""},
		{"compile padding main", "sglang.torch_compile_padding", input(version("main"), set("enable_torch_compile", true), static("disable_cuda_graph_padding", true)), "torch.compile needs CUDA-graph padding"},
		{"workers without key", "sglang.tokenizer_workers_api_key", input(set("tokenizer_worker_num", 4)), ""},
		{"workers with key", "sglang.tokenizer_workers_api_key", input(set("tokenizer_worker_num", 4), static("api_key", "k")), "tokenizer_worker_num = 4 with api_key set"},
		{"deterministic triton", "sglang.deterministic_backend", input(set("attention_backend", "triton"), static("enable_deterministic_inference", true)), ""},
		{"deterministic torch_native", "sglang.deterministic_backend", input(set("attention_backend", "torch_native"), static("enable_deterministic_inference", true)), "attention backend torch_native"},

		// hardware
		{"no fleet", "hardware.gpu_count", input(set("tp_size", 8, "dp_size", 8)), ""},
		{"fits host", "hardware.gpu_count", input(h100x8, set("tp_size", 8)), ""},
		{"too big for hosts", "hardware.gpu_count", input(fleet(host("a", h100, 4), host("b", h100, 2)), set("tp_size", 8)),
			"= 8 GPUs, but no live host can give one trial more than 4 (hosts considered: a: 4 × NVIDIA H100 80GB HBM3 (sm90, 80 GiB); b: 2 × NVIDIA H100 80GB HBM3 (sm90, 80 GiB))."},
		{"device_num caps hosts", "hardware.gpu_count", input(deviceNum(4), h100x8, set("tp_size", 8)),
			"no live host can give one trial more than 4 (hosts considered: h100-a: 8 × NVIDIA H100 80GB HBM3 (sm90, 80 GiB); device_num caps each host at 4 GPUs)."},
		{"device_num fits", "hardware.gpu_count", input(deviceNum(4), h100x8, set("tp_size", 4)), ""},
		{"fa3 on hopper", "hardware.fa3_compute_capability", input(h100x8, set("attention_backend", "fa3")), ""},
		{"fa3 on ampere dense", "hardware.fa3_compute_capability", input(fleet(host("a", a100, 8)), set("attention_backend", "fa3")), ""},
		{"fa3 on ampere mla", "hardware.fa3_compute_capability", input(preset("deepseek-v2-lite"), fleet(host("a", a100, 8)), set("attention_backend", "fa3")),
			"fa3 needs compute capability 9.x for an MLA model, but no live host has such a GPU"},
		{"fa3 on blackwell", "hardware.fa3_compute_capability", input(fleet(host("b", b200, 8)), set("prefill_attention_backend", "fa3")), "prefill_attention_backend = fa3 needs compute capability 8.x or 9.x"},
		{"fa4 mixed fleet", "hardware.fa4_compute_capability", input(fleet(host("a", h100, 8), host("b", b200, 2)), set("prefill_attention_backend", "fa4", "tp_size", 2)), ""},
		{"fa4 needs 4 blackwell", "hardware.fa4_compute_capability", input(fleet(host("a", h100, 8), host("b", b200, 2)), set("prefill_attention_backend", "fa4", "tp_size", 4)),
			"fa4 needs compute capability 10.x (Blackwell) on SGLang v0.5.5, but no live host has 4 such GPUs"},
		{"fa4 main hopper", "hardware.fa4_compute_capability", input(version("main"), h100x8, set("attention_backend", "fa4")), ""},
		{"fa4 page 128", "hardware.fa4_page_size", input(version("main"), h100x8, set("attention_backend", "fa4", "page_size", 128)), ""},
		{"fa4 page None hopper", "hardware.fa4_page_size", input(version("main"), h100x8, set("attention_backend", "fa4")), "needs a GPU other than compute capability 9.x"},
		{"trtllm_mha blackwell", "hardware.trtllm_mha_compute_capability", input(fleet(host("b", b200, 8)), set("attention_backend", "trtllm_mha")), ""},
		{"trtllm_mha hopper release", "hardware.trtllm_mha_compute_capability", input(h100x8, set("attention_backend", "trtllm_mha")), "trtllm_mha needs compute capability 10.x"},
		{"cutlass_mla blackwell", "hardware.mla_backend_compute_capability", input(preset("deepseek-v3"), fleet(host("b", b200, 8)), set("attention_backend", "cutlass_mla")), ""},
		{"cutlass_mla hopper", "hardware.mla_backend_compute_capability", input(preset("deepseek-v3"), h100x8, set("attention_backend", "cutlass_mla")), "needs compute capability 10.x (Blackwell)"},
		{"flashmla blackwell", "hardware.mla_backend_compute_capability", input(preset("deepseek-v3"), fleet(host("b", b200, 8)), set("attention_backend", "flashmla")), "needs compute capability 9.x (Hopper)"},
		{"aiter on rocm", "hardware.platform_backend", input(fleet(host("m", GPU{Name: "AMD Instinct MI300X", MemoryBytes: 192 << 30}, 8)), set("attention_backend", "aiter")), ""},
		{"aiter on nvidia", "hardware.platform_backend", input(h100x8, set("attention_backend", "aiter")), "aiter is a backend for another platform"},
		{"flashinfer on nvidia", "hardware.cuda_only_backend", input(h100x8, set("sampling_backend", "flashinfer")), ""},
		{"pytorch sampling on rocm", "hardware.cuda_only_backend", input(fleet(host("m", GPU{Name: "AMD Instinct MI300X", MemoryBytes: 192 << 30}, 8)), set("attention_backend", "triton", "sampling_backend", "pytorch")), ""},
		{"flashinfer on rocm", "hardware.cuda_only_backend", input(fleet(host("m", GPU{Name: "AMD Instinct MI300X", MemoryBytes: 192 << 30}, 8)), set("attention_backend", "triton", "sampling_backend", "flashinfer")),
			"sampling_backend = flashinfer needs the flashinfer package, which exists only for NVIDIA GPUs, but no live host has such a GPU (hosts considered: m: 8 × AMD Instinct MI300X (unknown compute capability, 192 GiB))"},
		{"fa3 on rocm", "hardware.cuda_only_backend", input(fleet(host("m", GPU{Name: "AMD Instinct MI300X", MemoryBytes: 192 << 30}, 8)), set("attention_backend", "fa3")), "fa3 is a CUDA kernel"},
		{"8b fits", "hardware.weights_fit", input(h100x8), ""},
		{"70b on 4 h100", "hardware.weights_fit", input(preset("llama-3.1-70b"), h100x8, set("tp_size", 4)), ""},
		{"70b on 1 h100", "hardware.weights_fit", input(preset("llama-3.1-70b"), h100x8, set("tp_size", 1)), "llama-3.1-70b needs about 141.2 GB of weights per GPU with tp_size × pp_size = 1"},
		{"70b fp8 on 2 h100", "hardware.weights_fit", input(preset("llama-3.1-70b"), h100x8, set("tp_size", 2), static("quantization", "fp8")), ""},
	}
	covered := map[string][2]bool{}
	for _, tc := range tests {
		c := covered[tc.rule]
		if tc.expectedMsg == "" {
			c[0] = true
		} else {
			c[1] = true
		}
		covered[tc.rule] = c
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := Lookup(tc.rule)
			if !ok {
				t.Fatalf("no rule %q", tc.rule)
			}
			v := r.Check(tc.given)
			switch {
			case tc.expectedMsg == "" && v != nil:
				t.Fatalf("rejected: %s", v.Reason)
			case tc.expectedMsg != "" && v == nil:
				t.Fatalf("accepted, want a rejection containing %q", tc.expectedMsg)
			case v != nil && !strings.Contains(v.Reason, tc.expectedMsg):
				t.Fatalf("reason %q does not contain %q", v.Reason, tc.expectedMsg)
			}
		})
	}
	for _, r := range All() {
		if c := covered[r.ID]; !c[0] || !c[1] {
			t.Errorf("rule %s needs a test it accepts (%v) and one it rejects (%v)", r.ID, c[0], c[1])
		}
	}
}

func TestAll_rules_are_well_formed(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	sets := map[string]int{}
	for _, r := range All() {
		if seen[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		seen[r.ID] = true
		sets[r.Set]++
		if !strings.HasPrefix(r.ID, r.Set+".") || r.Source == "" || r.Summary == "" || r.Check == nil {
			t.Errorf("rule %s: id must start with its set %q and it needs a source, summary and check", r.ID, r.Set)
		}
	}
	if sets[SetSeed] != 7 {
		t.Errorf("want the seed's 7 rules, have %d", sets[SetSeed])
	}
}

func TestEvaluate_sets_and_disabled(t *testing.T) {
	t.Parallel()
	spec := study.Default()
	bad := input(set("tp_size", 8, "dp_size", 8, "pp_size", 8, "attention_backend", "fa4", "tokenizer_worker_num", 3))
	ids := func(rs []events.Rejection) []string {
		var out []string
		for _, r := range rs {
			if r.Reason == "" || r.RuleSet == "" || r.Source == "" {
				t.Errorf("incomplete rejection %+v", r)
			}
			out = append(out, r.Rule)
		}
		return out
	}
	got := ids(Evaluate(&spec, bad))
	want := []string{"safety.domain", "seed.gpu_count", "seed.pp_dp_cap", "sglang.fa4_prefill_only"}
	if !slices.Equal(got, want) {
		t.Fatalf("default sets: got %v, want %v", got, want)
	}
	spec.Rules.Sets = []string{"seed"} // the seed's own behaviour
	got = ids(Evaluate(&spec, bad))
	want = []string{"safety.domain", "seed.gpu_count", "seed.pp_dp_cap"}
	if !slices.Equal(got, want) {
		t.Fatalf("seed set alone: got %v, want %v", got, want)
	}

	spec.Rules.Disabled = []string{"seed.pp_dp_cap", "safety.domain"}
	spec.Rules.Sets = []string{"seed", "sglang"}
	got = ids(Evaluate(&spec, bad))
	want = []string{"safety.domain", "seed.gpu_count", "sglang.fa4_prefill_only"}
	if !slices.Equal(got, want) {
		t.Fatalf("seed+sglang with disabled: got %v, want %v (safety cannot be disabled)", got, want)
	}

	if got := Evaluate(&spec, input()); got != nil {
		t.Fatalf("valid candidate rejected: %+v", got)
	}
}

func TestNewInput_normalises_and_keeps_raw(t *testing.T) {
	t.Parallel()
	spec := study.Default()
	rawP := events.Params{"tp_size": 2.0, "attention_backend": "None", "dp_size": "two", "bogus": 1.0}
	in := NewInput(&spec, rawP, 0, nil)
	if in.DeviceNum != 8 || in.Model.Name != "llama-3.1-8b" || in.Version != "v0.5.5" {
		t.Fatalf("spec fields not taken: %+v", in)
	}
	want := events.Params{"tp_size": 2, "attention_backend": nil}
	if !maps.Equal(in.Params, want) {
		t.Fatalf("Params = %v, want %v", in.Params, want)
	}
	if NewInput(&spec, rawP, 4, nil).DeviceNum != 4 {
		t.Fatal("device_num override ignored")
	}
	got := Evaluate(&spec, in)
	var ruleIDs []string
	for _, r := range got {
		ruleIDs = append(ruleIDs, r.Rule)
	}
	if !slices.Contains(ruleIDs, "safety.unknown_param") || !slices.Contains(ruleIDs, "safety.value_type") {
		t.Fatalf("want unknown_param and value_type, got %+v", got)
	}
}

func TestLookupPreset(t *testing.T) {
	t.Parallel()
	if m, ok := LookupPreset("", "/models/Meta-Llama-3.1-70B-Instruct"); !ok || m.Name != "llama-3.1-70b" {
		t.Fatalf("path hint: %+v %v", m, ok)
	}
	if m, ok := LookupPreset("DeepSeek-V3", ""); !ok || !m.MLA || !m.MoE {
		t.Fatalf("case-insensitive preset: %+v %v", m, ok)
	}
	if _, ok := LookupPreset("gpt-7", "/x"); ok {
		t.Fatal("unknown preset found")
	}
}

// TestDocs_list_every_rule keeps docs/validation.md in step with the rules.
func TestDocs_list_every_rule(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "validation.md"))
	if err != nil {
		t.Skipf("docs/validation.md not found: %v", err)
	}
	for _, id := range append(IDs(All()), RuleDedup) {
		if !strings.Contains(string(doc), "`"+id+"`") {
			t.Errorf("docs/validation.md does not document `%s`", id)
		}
	}
}
