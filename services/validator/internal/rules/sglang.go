package rules

import (
	"strings"
)

// Sources of SGLang's rules (shared/reference/sglang.md §A.4 names the rule ids).
const (
	srcServerArgs = "SGLang python/sglang/srt/server_args.py"
	srcCheckArgs  = "SGLang python/sglang/srt/server_args.py check_server_args"
	srcModel      = "SGLang model sharding (python/sglang/srt/layers/linear.py, model_runner.py)"
	srcBackends   = "SGLang python/sglang/srt/layers/attention/attention_registry.py"
)

// mlaBackends implement only multi-head latent attention (R-A4).
var mlaBackends = []string{"flashmla", "cutlass_mla", "trtllm_mla", "cutedsl_mla", "tokenspeed_mla"}

// mhaBackends implement only ordinary multi-head attention (R-A3; A.2 table).
var mhaBackends = []string{"trtllm_mha", "torch_native", "flex_attention"}

// sglangRules model SGLang's own checks (sglang.md §A.4) that need no
// hardware facts; the model shape comes from spec.model.preset.
func sglangRules() []Rule {
	return []Rule{
		{
			ID: "sglang.positive_sizes", Set: SetSGLang, Source: srcServerArgs + " (R-T4)",
			Summary: "Counts and sizes (tp/dp/pp size, page size, tokenizer workers, decode steps, CUDA-graph batch, max_prefill_tokens) must be at least 1.",
			Check: func(in Input) *Violation {
				var probs []string
				for _, n := range []string{"tp_size", "dp_size", "pp_size", "page_size", "tokenizer_worker_num",
					"num_continuous_decode_steps", "cuda_graph_max_bs", "max_prefill_tokens"} {
					if v, ok := in.intSet(n); ok && v < 1 {
						probs = append(probs, n+" = "+itoa(v))
					}
				}
				if len(probs) == 0 {
					return nil
				}
				return violation(strings.Join(probs, ", "), " must be at least 1; SGLang cannot start with a count or size below 1.")
			},
		},
		{
			ID: "sglang.tp_divides_heads", Set: SetSGLang, Source: srcModel + " (R-G2)",
			Summary: "tp_size must divide the model's attention heads (known model presets only).",
			Check: func(in Input) *Violation {
				tp := in.size("tp_size")
				if !in.Model.Known() || tp < 1 || in.Model.Heads%tp == 0 {
					return nil
				}
				return violation(in.Model.Name, " has ", itoa(in.Model.Heads), " attention heads, which tp_size = ",
					itoa(tp), " does not divide; SGLang shards heads evenly across TP ranks.")
			},
		},
		{
			ID: "sglang.tp_kv_heads", Set: SetSGLang, Source: srcModel + " (R-G3)",
			Summary: "KV heads must split evenly across tp_size (KV heads ≥ tp) or be replicated evenly (tp % KV heads = 0).",
			Check: func(in Input) *Violation {
				tp, kv := in.size("tp_size"), in.Model.KVHeads
				if !in.Model.Known() || in.Model.MLA || tp < 1 || kv < 1 {
					return nil
				}
				if kv >= tp && kv%tp != 0 {
					return violation(in.Model.Name, " has ", itoa(kv), " KV heads, which tp_size = ", itoa(tp), " does not divide evenly.")
				}
				if kv < tp && tp%kv != 0 {
					return violation(in.Model.Name, " has ", itoa(kv), " KV heads, which cannot be replicated evenly over tp_size = ", itoa(tp), ".")
				}
				return nil
			},
		},
		{
			ID: "sglang.dp_attention_tp", Set: SetSGLang, Source: srcServerArgs + " (R-DP2)",
			Summary: "With enable_dp_attention and dp_size > 1, tp_size must be divisible by dp_size.",
			Check: func(in Input) *Violation {
				tp, dp := in.size("tp_size"), in.size("dp_size")
				if in.flag("enable_dp_attention") && dp > 1 && tp%dp != 0 {
					return violation("enable_dp_attention carves dp_size = ", itoa(dp), " attention groups out of tp_size = ",
						itoa(tp), ", which it does not divide.")
				}
				return nil
			},
		},
		{
			ID: "sglang.dp_lm_head", Set: SetSGLang, Source: srcServerArgs + " (R-DP4)",
			Summary: "enable_dp_lm_head needs enable_dp_attention.",
			Check: func(in Input) *Violation {
				if in.flag("enable_dp_lm_head") && !in.flag("enable_dp_attention") {
					return violation("enable_dp_lm_head is true but enable_dp_attention is false; SGLang requires DP attention for the DP LM head.")
				}
				return nil
			},
		},
		{
			ID: "sglang.fa4_prefill_only", Set: SetSGLang, Source: srcServerArgs + " (R-A2, release only)",
			Summary: "On SGLang releases (v0.5.x), fa4 is only supported as --prefill-attention-backend.",
			Check: func(in Input) *Violation {
				if in.mainBranch() {
					return nil
				}
				for _, f := range []string{"attention_backend", "decode_attention_backend"} {
					if in.str(f) == "fa4" {
						return violation(f, " = fa4, but SGLang ", versionName(in), " supports fa4 only for prefill (use prefill_attention_backend = fa4).")
					}
				}
				return nil
			},
		},
		{
			ID: "sglang.backend_model_type", Set: SetSGLang, Source: srcBackends + " (R-A3, R-A4)",
			Summary: "MLA-only backends (flashmla, *_mla) need an MLA model; MHA-only backends (trtllm_mha, torch_native, flex_attention) need a non-MLA model (known model shapes only).",
			Check: func(in Input) *Violation {
				if !in.Model.Known() {
					return nil
				}
				if !in.Model.MLA {
					if f, b, ok := in.usesBackend(mlaBackends...); ok {
						return violation(f, " = ", b, " implements only multi-head latent attention, but ", in.Model.Name, " uses ordinary multi-head attention.")
					}
				} else if f, b, ok := in.usesBackend(mhaBackends...); ok {
					return violation(f, " = ", b, " implements only ordinary multi-head attention, but ", in.Model.Name, " uses multi-head latent attention (MLA).")
				}
				return nil
			},
		},
		{
			ID: "sglang.backend_model_variant", Set: SetSGLang, Source: srcBackends + " (R-A6)",
			Summary: "dsa/nsa need a DeepSeek sparse-attention (DSA) model; dual_chunk_flash_attn needs a dual-chunk-attention model (known model shapes only).",
			Check: func(in Input) *Violation {
				if !in.Model.Known() {
					return nil
				}
				if f, b, ok := in.usesBackend("dsa", "nsa"); ok && in.Model.Attention != "dsa" {
					return violation(f, " = ", b, " implements DeepSeek sparse attention (DeepSeek-V3.2), which ", in.Model.Name, " does not have.")
				}
				if f, b, ok := in.usesBackend("dual_chunk_flash_attn"); ok && in.Model.Attention != "dual_chunk" {
					return violation(f, " = ", b, " needs a model with dual-chunk attention (Qwen long-context models), which ", in.Model.Name, " does not have.")
				}
				return nil
			},
		},
		{
			ID: "sglang.multi_node", Set: SetSGLang, Source: srcServerArgs + " (R-G1, R-DP4)",
			Summary: "With nnodes > 1, tp_size × pp_size must be divisible by nnodes, and dp_size > 1 needs enable_dp_attention.",
			Check: func(in Input) *Violation {
				nodes := in.intOr("nnodes", 1)
				if nodes <= 1 {
					return nil
				}
				tp, pp, dp := in.size("tp_size"), in.size("pp_size"), in.size("dp_size")
				if (tp*pp)%nodes != 0 {
					return violation("nnodes = ", itoa(nodes), " does not divide tp_size × pp_size = ", itoa(tp), " × ", itoa(pp), " = ", itoa(tp*pp), "; SGLang splits the ranks evenly over the nodes.")
				}
				if dp > 1 && !in.flag("enable_dp_attention") {
					return violation("dp_size = ", itoa(dp), " with nnodes = ", itoa(nodes), " needs enable_dp_attention; SGLang does not run multi-node data parallelism without it.")
				}
				return nil
			},
		},
		{
			ID: "sglang.chunk_page_multiple", Set: SetSGLang, Source: srcCheckArgs + " (R-PG1, R-PG2, R-PG3, R-PG4)",
			Summary: "chunked_prefill_size must be a multiple of the effective page size (after backends that force one).",
			Check: func(in Input) *Violation {
				chunk, ok := in.chunked()
				if !ok {
					return nil
				}
				page, forcedBy := effectivePageSize(in)
				if page < 1 || chunk%page == 0 {
					return nil
				}
				how := "page_size = " + itoa(page)
				if forcedBy != "" {
					how = "the page size " + itoa(page) + " that the " + forcedBy + " backend forces"
				}
				return violation("chunked_prefill_size = ", itoa(chunk), " is not a multiple of ", how, "; SGLang asserts the chunk is a whole number of pages.")
			},
		},
		{
			ID: "sglang.mixed_chunk_needs_chunking", Set: SetSGLang, Source: "SGLang python/sglang/srt/managers/scheduler.py (R-C2)",
			Summary: "enable_mixed_chunk has no effect when chunked prefill is disabled (chunked_prefill_size ≤ 0).",
			Check: func(in Input) *Violation {
				if in.flag("enable_mixed_chunk") && in.chunkingDisabled() {
					v, _ := in.intSet("chunked_prefill_size")
					return violation("enable_mixed_chunk is true but chunked_prefill_size = ", itoa(v), " disables chunked prefill, so SGLang would silently ignore it.")
				}
				return nil
			},
		},
		{
			ID: "sglang.pp_mixed_chunk", Set: SetSGLang, Source: srcServerArgs + " (R-PP3, release only)",
			Summary: "On SGLang releases, pipeline parallelism (pp_size > 1) is incompatible with enable_mixed_chunk.",
			Check: func(in Input) *Violation {
				pp := in.size("pp_size")
				if !in.mainBranch() && pp > 1 && in.flag("enable_mixed_chunk") {
					return violation("pp_size = ", itoa(pp), " with enable_mixed_chunk: SGLang ", versionName(in), " asserts pipeline parallelism is not compatible with mixed chunked prefill.")
				}
				return nil
			},
		},
		{
			ID: "sglang.pp_speculative", Set: SetSGLang, Source: srcServerArgs + " (R-PP2)",
			Summary: "Pipeline parallelism is incompatible with speculative decoding.",
			Check: func(in Input) *Violation {
				pp, spec := in.size("pp_size"), in.str("speculative_algorithm")
				if pp > 1 && spec != "" {
					return violation("pp_size = ", itoa(pp), " with speculative_algorithm = ", spec, ": SGLang asserts pipeline parallelism does not support speculative decoding.")
				}
				return nil
			},
		},
		{
			ID: "sglang.mixed_chunk_speculative", Set: SetSGLang, Source: srcServerArgs + " (R-C3)",
			Summary: "enable_mixed_chunk is incompatible with speculative decoding.",
			Check: func(in Input) *Violation {
				if spec := in.str("speculative_algorithm"); spec != "" && in.flag("enable_mixed_chunk") {
					return violation("enable_mixed_chunk with speculative_algorithm = ", spec, ": SGLang does not support mixed chunks with speculative decoding.")
				}
				return nil
			},
		},
		{
			ID: "sglang.flex_speculative", Set: SetSGLang, Source: srcServerArgs + " (R-A7)",
			Summary: "flex_attention does not support speculative decoding.",
			Check: func(in Input) *Violation {
				if f, _, ok := in.usesBackend("flex_attention"); ok && in.str("speculative_algorithm") != "" {
					return violation(f, " = flex_attention with speculative_algorithm = ", in.str("speculative_algorithm"), ": SGLang asserts flex attention does not support speculative decoding.")
				}
				return nil
			},
		},
		{
			ID: "sglang.tbo_needs_moe", Set: SetSGLang, Source: "SGLang python/sglang/srt/two_batch_overlap.py (R-TBO2)",
			Summary: "Two-batch overlap needs a mixture-of-experts model (known presets only).",
			Check: func(in Input) *Violation {
				if in.flag("enable_two_batch_overlap") && in.Model.Known() && !in.Model.MoE {
					return violation("enable_two_batch_overlap overlaps the two halves of an expert-parallel MoE batch, but ", in.Model.Name, " is a dense model.")
				}
				return nil
			},
		},
		{
			ID: "sglang.tbo_a2a_backend", Set: SetSGLang, Source: srcServerArgs + " (R-TBO1)",
			Summary: "Two-batch overlap needs an all-to-all MoE backend (moe_a2a_backend ≠ none; on main, DP attention also suffices).",
			Check: func(in Input) *Violation {
				if !in.flag("enable_two_batch_overlap") {
					return nil
				}
				a2a := in.strOr("moe_a2a_backend")
				if a2a != "" && a2a != "none" {
					return nil
				}
				if in.mainBranch() && in.flag("enable_dp_attention") {
					return nil
				}
				return violation("enable_two_batch_overlap needs an all-to-all MoE backend (e.g. moe_a2a_backend = deepep), but moe_a2a_backend is none.")
			},
		},
		{
			ID: "sglang.priority_policy", Set: SetSGLang, Source: srcServerArgs + " (R-SP2)",
			Summary: "enable_priority_scheduling needs schedule_policy fcfs or lof.",
			Check: func(in Input) *Violation {
				p := in.strOr("schedule_policy")
				if in.flag("enable_priority_scheduling") && p != "fcfs" && p != "lof" {
					return violation("enable_priority_scheduling with schedule_policy = ", p, ": SGLang allows priority scheduling only with fcfs or lof.")
				}
				return nil
			},
		},
		{
			ID: "sglang.torch_compile_padding", Set: SetSGLang, Source: srcServerArgs + " (R-TC2, main only)",
			Summary: "On SGLang main, enable_torch_compile is incompatible with disable_cuda_graph_padding.",
			Check: func(in Input) *Violation {
				if in.mainBranch() && in.flag("enable_torch_compile") && in.flag("disable_cuda_graph_padding") {
					return violation("enable_torch_compile with disable_cuda_graph_padding: SGLang main asserts torch.compile needs CUDA-graph padding.")
				}
				return nil
			},
		},
		{
			ID: "sglang.tokenizer_workers_api_key", Set: SetSGLang, Source: "SGLang python/sglang/srt/entrypoints/http_server.py (R-TK1, release only)",
			Summary: "On SGLang releases, tokenizer_worker_num > 1 is incompatible with api_key.",
			Check: func(in Input) *Violation {
				n := in.intOr("tokenizer_worker_num", 1)
				if !in.mainBranch() && n > 1 && in.str("api_key") != "" {
					return violation("tokenizer_worker_num = ", itoa(n), " with api_key set: SGLang ", versionName(in), " asserts multi-tokenizer mode does not support an API key.")
				}
				return nil
			},
		},
		{
			ID: "sglang.deterministic_backend", Set: SetSGLang, Source: srcServerArgs + " (R-S1)",
			Summary: "enable_deterministic_inference needs the flashinfer, fa3 or triton attention backend (main also fa4, ascend, intel_xpu).",
			Check: func(in Input) *Violation {
				if !in.flag("enable_deterministic_inference") {
					return nil
				}
				ok := map[string]bool{"flashinfer": true, "fa3": true, "triton": true}
				if in.mainBranch() {
					ok["fa4"], ok["ascend"], ok["intel_xpu"] = true, true, true
				}
				pre, dec := in.backends()
				for _, b := range []string{pre, dec} {
					if b != "" && !ok[b] {
						return violation("enable_deterministic_inference with attention backend ", b, ": SGLang supports deterministic inference only with flashinfer, fa3 or triton.")
					}
				}
				return nil
			},
		},
	}
}

func versionName(in Input) string {
	if in.Version == "" {
		return "release"
	}
	return in.Version
}
