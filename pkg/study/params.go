package study

import (
	"sort"
	"strings"
)

// Kind is the type of a launch parameter's value.
type Kind int

// Kinds of parameter values.
const (
	KindString Kind = iota
	KindInt
	KindFloat
	KindBool
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "integer"
	case KindFloat:
		return "number"
	case KindBool:
		return "boolean"
	default:
		return "string"
	}
}

// ParamDef describes one of SGLang's launch_server arguments: its ServerArgs
// field name, its flag as SGLang spells it, its type and its default. A bool
// parameter is a store_true flag: true passes the bare flag, false passes nothing.
type ParamDef struct {
	// Name is the ServerArgs field, e.g. "tp_size".
	Name string
	// Flag is the spelling sgtune always emits, e.g. "--tp-size".
	Flag string
	// Aliases are other spellings SGLang accepts, e.g. "--tensor-parallel-size".
	Aliases []string
	Kind    Kind
	// Choices restricts a string parameter (argparse choices); empty means any string.
	Choices []string
	// Default is SGLang's default; nil means "None" (SGLang decides, often from the GPU).
	Default any
	// RunnerOwned marks flags the runner sets itself (host, port): a spec may not set them.
	RunnerOwned bool
}

// Attention backends SGLang's argparse accepts (release v0.5.x plus main's additions);
// which of them a given GPU and model can run is the validator's business.
var attentionBackends = []string{
	"triton", "torch_native", "flex_attention", "nsa", "dsa", "cutlass_mla", "fa3", "fa4",
	"flashinfer", "flashmla", "trtllm_mla", "trtllm_mha", "cutedsl_mla", "tokenspeed_mla",
	"dual_chunk_flash_attn", "hpc_ops", "aiter", "wave", "intel_amx", "ascend", "intel_xpu",
}

// registry lists the launch_server arguments sgtune knows, in the order flags are emitted.
// Sources: python/sglang/srt/server_args.py (add_cli_args), see shared/reference/sglang.md §A.
var registry = []ParamDef{
	{Name: "model_path", Flag: "--model-path", Aliases: []string{"--model"}, Kind: KindString},
	{Name: "tokenizer_path", Flag: "--tokenizer-path", Kind: KindString},
	{Name: "host", Flag: "--host", Kind: KindString, Default: "127.0.0.1", RunnerOwned: true},
	{Name: "port", Flag: "--port", Kind: KindInt, Default: 30000, RunnerOwned: true},
	{Name: "tp_size", Flag: "--tp-size", Aliases: []string{"--tensor-parallel-size"}, Kind: KindInt, Default: 1},
	{Name: "dp_size", Flag: "--dp-size", Aliases: []string{"--data-parallel-size"}, Kind: KindInt, Default: 1},
	{Name: "pp_size", Flag: "--pp-size", Aliases: []string{"--pipeline-parallel-size"}, Kind: KindInt, Default: 1},
	{Name: "ep_size", Flag: "--ep-size", Aliases: []string{"--expert-parallel-size"}, Kind: KindInt, Default: 1},
	{Name: "attention_backend", Flag: "--attention-backend", Kind: KindString, Choices: attentionBackends},
	{Name: "prefill_attention_backend", Flag: "--prefill-attention-backend", Kind: KindString, Choices: attentionBackends},
	{Name: "decode_attention_backend", Flag: "--decode-attention-backend", Kind: KindString, Choices: attentionBackends},
	{Name: "chunked_prefill_size", Flag: "--chunked-prefill-size", Kind: KindInt},
	{Name: "max_prefill_tokens", Flag: "--max-prefill-tokens", Kind: KindInt, Default: 16384},
	{Name: "schedule_policy", Flag: "--schedule-policy", Kind: KindString, Default: "fcfs",
		Choices: []string{"lpm", "random", "fcfs", "dfs-weight", "lof", "priority", "routing-key"}},
	{Name: "schedule_conservativeness", Flag: "--schedule-conservativeness", Kind: KindFloat, Default: 1.0},
	{Name: "page_size", Flag: "--page-size", Kind: KindInt},
	{Name: "cuda_graph_max_bs", Flag: "--cuda-graph-max-bs", Kind: KindInt},
	{Name: "disable_cuda_graph", Flag: "--disable-cuda-graph", Kind: KindBool, Default: false},
	{Name: "disable_cuda_graph_padding", Flag: "--disable-cuda-graph-padding", Kind: KindBool, Default: false},
	{Name: "enable_mixed_chunk", Flag: "--enable-mixed-chunk", Kind: KindBool, Default: false},
	{Name: "disable_overlap_schedule", Flag: "--disable-overlap-schedule", Kind: KindBool, Default: false},
	{Name: "enable_torch_compile", Flag: "--enable-torch-compile", Kind: KindBool, Default: false},
	{Name: "torch_compile_max_bs", Flag: "--torch-compile-max-bs", Kind: KindInt, Default: 32},
	{Name: "num_continuous_decode_steps", Flag: "--num-continuous-decode-steps", Kind: KindInt, Default: 1},
	{Name: "enable_two_batch_overlap", Flag: "--enable-two-batch-overlap", Kind: KindBool, Default: false},
	{Name: "tbo_token_distribution_threshold", Flag: "--tbo-token-distribution-threshold", Kind: KindFloat, Default: 0.48},
	{Name: "moe_a2a_backend", Flag: "--moe-a2a-backend", Kind: KindString, Default: "none",
		Choices: []string{"none", "deepep", "mooncake", "ascend_fuseep", "flashinfer"}},
	{Name: "tokenizer_worker_num", Flag: "--tokenizer-worker-num", Kind: KindInt, Default: 1},
	{Name: "detokenizer_worker_num", Flag: "--detokenizer-worker-num", Kind: KindInt, Default: 1},
	{Name: "sampling_backend", Flag: "--sampling-backend", Kind: KindString, Choices: []string{"flashinfer", "pytorch", "ascend"}},
	{Name: "mem_fraction_static", Flag: "--mem-fraction-static", Kind: KindFloat},
	{Name: "max_running_requests", Flag: "--max-running-requests", Kind: KindInt},
	{Name: "max_total_tokens", Flag: "--max-total-tokens", Kind: KindInt},
	{Name: "context_length", Flag: "--context-length", Kind: KindInt},
	{Name: "enable_dp_attention", Flag: "--enable-dp-attention", Kind: KindBool, Default: false},
	{Name: "enable_dp_lm_head", Flag: "--enable-dp-lm-head", Kind: KindBool, Default: false},
	{Name: "load_balance_method", Flag: "--load-balance-method", Kind: KindString,
		Choices: []string{"auto", "round_robin", "shortest_queue", "minimum_tokens", "follow_bootstrap_room", "total_requests", "total_tokens"}},
	{Name: "disable_radix_cache", Flag: "--disable-radix-cache", Kind: KindBool, Default: false},
	{Name: "enable_priority_scheduling", Flag: "--enable-priority-scheduling", Kind: KindBool, Default: false},
	{Name: "stream_interval", Flag: "--stream-interval", Kind: KindInt, Default: 1},
	{Name: "stream_output", Flag: "--stream-output", Kind: KindBool, Default: false},
	{Name: "kv_cache_dtype", Flag: "--kv-cache-dtype", Kind: KindString, Default: "auto",
		Choices: []string{"auto", "fp8_e5m2", "fp8_e4m3", "bf16", "bfloat16", "fp4_e2m1"}},
	{Name: "dtype", Flag: "--dtype", Kind: KindString, Default: "auto",
		Choices: []string{"auto", "half", "float16", "bfloat16", "float", "float32"}},
	{Name: "quantization", Flag: "--quantization", Kind: KindString},
	{Name: "speculative_algorithm", Flag: "--speculative-algorithm", Kind: KindString,
		Choices: []string{"EAGLE", "EAGLE3", "NEXTN", "STANDALONE", "NGRAM"}},
	{Name: "enable_deterministic_inference", Flag: "--enable-deterministic-inference", Kind: KindBool, Default: false},
	{Name: "trust_remote_code", Flag: "--trust-remote-code", Kind: KindBool, Default: false},
	{Name: "served_model_name", Flag: "--served-model-name", Kind: KindString},
	{Name: "chat_template", Flag: "--chat-template", Kind: KindString},
	{Name: "revision", Flag: "--revision", Kind: KindString},
	{Name: "load_format", Flag: "--load-format", Kind: KindString, Default: "auto"},
	{Name: "download_dir", Flag: "--download-dir", Kind: KindString},
	{Name: "random_seed", Flag: "--random-seed", Kind: KindInt},
	{Name: "log_level", Flag: "--log-level", Kind: KindString, Default: "info"},
	{Name: "skip_server_warmup", Flag: "--skip-server-warmup", Kind: KindBool, Default: false},
	{Name: "enable_metrics", Flag: "--enable-metrics", Kind: KindBool, Default: false},
	{Name: "api_key", Flag: "--api-key", Kind: KindString},
	{Name: "watchdog_timeout", Flag: "--watchdog-timeout", Kind: KindFloat, Default: 300.0},
	{Name: "disable_custom_all_reduce", Flag: "--disable-custom-all-reduce", Kind: KindBool, Default: false},
	{Name: "enable_nccl_nvls", Flag: "--enable-nccl-nvls", Kind: KindBool, Default: false},
	{Name: "nnodes", Flag: "--nnodes", Kind: KindInt, Default: 1},
	{Name: "node_rank", Flag: "--node-rank", Kind: KindInt, Default: 0},
	{Name: "dist_init_addr", Flag: "--dist-init-addr", Kind: KindString},
}

// Registry returns every known launch parameter, in emission order.
func Registry() []ParamDef {
	out := make([]ParamDef, len(registry))
	copy(out, registry)
	return out
}

// LookupParam finds a parameter by its ServerArgs field name ("tp_size").
func LookupParam(name string) (ParamDef, bool) {
	for _, p := range registry {
		if p.Name == name {
			return p, true
		}
	}
	return ParamDef{}, false
}

// LookupFlag finds a parameter by any of its flag spellings ("--tp-size",
// "--tensor-parallel-size"). It does not resolve argparse prefixes.
func LookupFlag(flag string) (ParamDef, bool) {
	for _, p := range registry {
		if p.Flag == flag {
			return p, true
		}
		for _, a := range p.Aliases {
			if a == flag {
				return p, true
			}
		}
	}
	return ParamDef{}, false
}

// registryIndex orders parameters for flag emission.
func registryIndex(name string) int {
	for i, p := range registry {
		if p.Name == name {
			return i
		}
	}
	return len(registry)
}

// suggestParam names the known parameter closest to an unknown one, for error messages.
func suggestParam(name string) string {
	norm := strings.ReplaceAll(strings.TrimLeft(name, "-"), "-", "_")
	if p, ok := LookupParam(norm); ok {
		return p.Name
	}
	best, bestScore := "", 1<<30
	for _, p := range registry {
		if d := editDistance(norm, p.Name); d < bestScore {
			best, bestScore = p.Name, d
		}
	}
	if bestScore <= 3 {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// KnownParamNames lists every parameter name, sorted, for help texts.
func KnownParamNames() []string {
	out := make([]string, 0, len(registry))
	for _, p := range registry {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}
