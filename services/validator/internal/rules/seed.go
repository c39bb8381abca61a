package rules

import "strconv"

// seedSource is where the seed's rules come from.
const seedSource = "seed tuner: python/sglang/optuna_throughput_tuner.py _validate_parameters (keliangli/sglang 086da98)"

// seedRules are the seed tuner's seven rules, each a named, switchable rule.
//
// None handling: the seed compared values with Python operators, where
// `None <= 2048` raises. A parameter whose SGLang default is fixed (tp, pp, dp
// = 1; max_prefill_tokens = 16384; flags = false) is read as that default when
// None. A parameter whose default SGLang derives from the GPU
// (chunked_prefill_size, cuda_graph_max_bs) is "not set" when None, and a rule
// comparing it does not apply. chunked_prefill_size ≤ 0 (chunked prefill
// disabled, a value the seed never offered) is "not set" too.
func seedRules() []Rule {
	return []Rule{
		{
			ID: "seed.gpu_count", Set: SetSeed, Source: seedSource,
			Summary: "tp_size × pp_size × dp_size (tp_size × pp_size with DP attention) must not exceed device_num.",
			Check: func(in Input) *Violation {
				n, how := in.gpus()
				if in.DeviceNum > 0 && n > in.DeviceNum {
					return violation(how, ", but device_num allows ", itoa(in.DeviceNum), ".")
				}
				return nil
			},
		},
		{
			ID: "seed.pp_dp_cap", Set: SetSeed, Source: seedSource,
			Summary: "pp_size and dp_size may not both exceed 4.",
			Check: func(in Input) *Violation {
				pp, dp := in.size("pp_size"), in.size("dp_size")
				if pp > 4 && dp > 4 {
					return violation("pp_size = ", itoa(pp), " and dp_size = ", itoa(dp),
						" are both above 4, which the seed tuner does not allow together.")
				}
				return nil
			},
		},
		{
			ID: "seed.chunk_le_prefill", Set: SetSeed, Source: seedSource,
			Summary: "chunked_prefill_size must not exceed max_prefill_tokens (None max_prefill_tokens = SGLang's 16384).",
			Check: func(in Input) *Violation {
				chunk, ok := in.chunked()
				if !ok {
					return nil
				}
				mpt := in.intOr("max_prefill_tokens", 16384)
				if chunk > mpt {
					return violation("chunked_prefill_size = ", itoa(chunk), " exceeds max_prefill_tokens = ", itoa(mpt), ".")
				}
				return nil
			},
		},
		{
			ID: "seed.chunk_per_dp", Set: SetSeed, Source: seedSource,
			Summary: "With dp_size > 1 and chunked prefill set, chunked_prefill_size / dp_size must be at least 256.",
			Check: func(in Input) *Violation {
				chunk, ok := in.chunked()
				dp := in.size("dp_size")
				if !ok || dp <= 1 {
					return nil
				}
				if float64(chunk)/float64(dp) < 256 {
					return violation("chunked_prefill_size / dp_size = ", itoa(chunk), " / ", itoa(dp), " = ",
						strconv.FormatFloat(float64(chunk)/float64(dp), 'g', 4, 64), " tokens per DP rank, below the minimum of 256.")
				}
				return nil
			},
		},
		{
			ID: "seed.tbo_needs_overlap", Set: SetSeed, Source: seedSource,
			Summary: "enable_two_batch_overlap is invalid together with disable_overlap_schedule.",
			Check: func(in Input) *Violation {
				if in.flag("enable_two_batch_overlap") && in.flag("disable_overlap_schedule") {
					return violation("enable_two_batch_overlap is true but disable_overlap_schedule is true too; ",
						"the seed tuner does not allow two-batch overlap without the overlap scheduler.")
				}
				return nil
			},
		},
		{
			ID: "seed.small_chunk_graph_bs", Set: SetSeed, Source: seedSource,
			Summary: "When chunked_prefill_size ≤ 2048, cuda_graph_max_bs must be ≤ 32 (both must be set).",
			Check: func(in Input) *Violation {
				chunk, ok := in.chunked()
				bs, bsSet := in.intSet("cuda_graph_max_bs")
				if ok && bsSet && chunk <= 2048 && bs > 32 {
					return violation("chunked_prefill_size = ", itoa(chunk), " is at most 2048, so cuda_graph_max_bs must be at most 32, but it is ", itoa(bs), ".")
				}
				return nil
			},
		},
		{
			ID: "seed.dp_graph_bs", Set: SetSeed, Source: seedSource,
			Summary: "When dp_size ≥ 4, cuda_graph_max_bs must be ≤ 64 (when set).",
			Check: func(in Input) *Violation {
				dp := in.size("dp_size")
				bs, bsSet := in.intSet("cuda_graph_max_bs")
				if dp >= 4 && bsSet && bs > 64 {
					return violation("dp_size = ", itoa(dp), " is at least 4, so cuda_graph_max_bs must be at most 64, but it is ", itoa(bs), ".")
				}
				return nil
			},
		},
	}
}
