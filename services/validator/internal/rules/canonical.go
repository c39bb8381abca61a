package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Canonical is the config SGLang would actually run: the model, the SGLang
// version, and every server argument whose effective value differs from
// SGLang's default, after SGLang's own silent adjustments. Two candidates with
// the same Canonical run identically.
type Canonical struct {
	Model   string `json:"model"`
	Version string `json:"sglang_version"`
	// Args maps ServerArgs names to effective values; an argument at its
	// default is absent, and nil means "SGLang decides from the hardware".
	Args map[string]any `json:"args"`
}

// canonicalDefaults are SGLang's CUDA defaults where the registry has None
// but the value does not depend on the GPU.
var canonicalDefaults = map[string]any{
	"page_size": 1,
}

// Canonicalize computes the config SGLang would actually run for in. It merges
// only what SGLang itself merges (sglang.md §A.4):
//   - None ≡ the default value (tp_size None ≡ 1, max_prefill_tokens None ≡ 16384,
//     flags None ≡ false, page_size None ≡ 1 on CUDA); hardware-dependent
//     defaults (chunked_prefill_size, cuda_graph_max_bs, sampling_backend None) stay distinct;
//   - chunked_prefill_size ≤ 0 ≡ -1 (R-C1), and then enable_mixed_chunk is ignored (R-C2);
//   - fa3 with kv_cache_dtype fp8_e5m2 runs triton (R-A8);
//   - prefill and decode backends resolve against attention_backend; equal ones fold into
//     attention_backend (A.2);
//   - torch_native / flex_attention or disable_cuda_graph: no CUDA graph, so
//     cuda_graph_max_bs, enable_torch_compile, torch_compile_max_bs and
//     disable_cuda_graph_padding have no effect (R-CG1, R-TC1);
//   - torch_compile_max_bs without torch.compile, tbo_token_distribution_threshold without TBO;
//   - pp_size > 1 and speculative decoding turn the overlap scheduler off (R-PP1, R-O1);
//   - dp_size = 1 turns DP attention and the DP LM head off (R-DP3); with DP
//     attention, chunked_prefill_size is divided by dp_size (R-C5);
//   - dual_chunk_flash_attn turns mixed chunk and the radix cache off (R-C7);
//   - lpm / dfs-weight without the radix cache run fcfs (R-SP1);
//   - deterministic inference forces sampling_backend pytorch (R-S1);
//   - an all-to-all MoE backend sets ep_size = tp_size (R-TBO3);
//   - backends that force a page size (flashmla, cutlass_mla, trtllm_*, release fa4 prefill) (R-PG2/3).
//
// num_continuous_decode_steps is kept although it is probably a no-op (R-N1):
// the evidence is a third-party review, not SGLang's code.
func Canonicalize(in Input) Canonical {
	eff := map[string]any{}
	for _, src := range []map[string]any{in.Static, in.Params} {
		for name, v := range src {
			def, ok := study.LookupParam(name)
			if !ok || def.RunnerOwned || name == "model_path" {
				continue
			}
			eff[name] = v
		}
	}
	get := func(name string) any {
		v := eff[name]
		if v == nil {
			if d, ok := canonicalDefaults[name]; ok {
				return d
			}
			return registryDefault(name)
		}
		return v
	}
	getInt := func(name string) (int, bool) { n, ok := get(name).(int); return n, ok }
	getBool := func(name string) bool { b, _ := get(name).(bool); return b }
	getStr := func(name string) string { s, _ := get(name).(string); return s }
	for name := range eff {
		eff[name] = get(name)
	}

	if c, ok := getInt("chunked_prefill_size"); ok && c <= 0 {
		eff["chunked_prefill_size"] = -1
		eff["enable_mixed_chunk"] = false
	}
	// dual_chunk_flash_attn turns mixed chunk and the radix cache off (R-C7).
	if slices.Contains([]string{getStr("attention_backend"), getStr("prefill_attention_backend"), getStr("decode_attention_backend")}, "dual_chunk_flash_attn") {
		eff["enable_mixed_chunk"] = false
		eff["disable_radix_cache"] = true
	}

	// Attention backends.
	all, pre, dec := getStr("attention_backend"), getStr("prefill_attention_backend"), getStr("decode_attention_backend")
	if getStr("kv_cache_dtype") == "fp8_e5m2" {
		for _, b := range []*string{&all, &pre, &dec} {
			if *b == "fa3" {
				*b = "triton"
			}
		}
	}
	if pre == "" {
		pre = all
	}
	if dec == "" {
		dec = all
	}
	delete(eff, "prefill_attention_backend")
	delete(eff, "decode_attention_backend")
	delete(eff, "attention_backend")
	if pre == dec {
		all = pre
	} else {
		eff["prefill_attention_backend"], eff["decode_attention_backend"] = orNil(pre), orNil(dec)
	}
	eff["attention_backend"] = orNil(all)

	// CUDA graphs.
	if all == "torch_native" || all == "flex_attention" || getBool("disable_cuda_graph") {
		eff["disable_cuda_graph"] = true
		for _, n := range []string{"cuda_graph_max_bs", "enable_torch_compile", "torch_compile_max_bs", "disable_cuda_graph_padding"} {
			delete(eff, n)
		}
	}
	if !getBool("enable_torch_compile") {
		delete(eff, "torch_compile_max_bs")
	}
	if !getBool("enable_two_batch_overlap") {
		delete(eff, "tbo_token_distribution_threshold")
	}

	// The overlap scheduler is off with pipeline parallelism (R-PP1) and with
	// speculative decoding (R-O1; sgtune does not model SGLANG_ENABLE_SPEC_V2).
	if pp, ok := getInt("pp_size"); ok && pp > 1 || getStr("speculative_algorithm") != "" {
		eff["disable_overlap_schedule"] = true
	}
	if dp, ok := getInt("dp_size"); !ok || dp <= 1 {
		eff["enable_dp_attention"] = false
		eff["enable_dp_lm_head"] = false
	} else if c, ok := getInt("chunked_prefill_size"); ok && c > 0 && getBool("enable_dp_attention") {
		// DP attention splits the chunk over the DP ranks (R-C5).
		eff["chunked_prefill_size"] = c / dp
	}
	if getBool("disable_radix_cache") && slices.Contains([]string{"lpm", "dfs-weight"}, getStr("schedule_policy")) {
		eff["schedule_policy"] = "fcfs"
	}
	if getBool("enable_deterministic_inference") {
		eff["sampling_backend"] = "pytorch"
	}
	if a2a := getStr("moe_a2a_backend"); a2a != "" && a2a != "none" {
		if tp, ok := getInt("tp_size"); ok {
			eff["ep_size"] = tp
		}
	}

	// Page size, after the backends' forced values.
	view := in
	view.Params, view.Static = eff, nil
	if page, _ := effectivePageSize(view); page > 0 {
		eff["page_size"] = page
	}

	out := Canonical{Model: in.ModelPath, Version: in.Version, Args: map[string]any{}}
	for name, v := range eff {
		d, ok := canonicalDefaults[name]
		if !ok {
			d = registryDefault(name)
		}
		if v == nil || study.ValueEqual(v, d) {
			continue
		}
		out.Args[name] = v
	}
	return out
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Hash is a stable hash of the canonical config: 32 hex digits of SHA-256
// over its JSON (object keys sorted).
func (c Canonical) Hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		// Args hold only normalised scalars; Marshal cannot fail on them.
		panic("rules: canonical config does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// CanonicalHash is Canonicalize(in).Hash().
func CanonicalHash(in Input) string { return Canonicalize(in).Hash() }

// effectivePageSize is the page size SGLang runs for the config: page_size
// (None = 1 on CUDA), unless a chosen backend forces another (R-PG2, R-PG3
// release); forcedBy names that backend.
func effectivePageSize(in Input) (page int, forcedBy string) {
	page = 1
	if p, ok := in.intSet("page_size"); ok {
		page = p
	}
	pre, dec := in.backends()
	for _, b := range []string{pre, dec} {
		switch b {
		case "flashmla", "dsa", "nsa":
			page, forcedBy = 64, b
		case "hpc_ops":
			if in.mainBranch() {
				page, forcedBy = 64, b
			}
		case "cutlass_mla", "ascend":
			page, forcedBy = 128, b
		case "trtllm_mha":
			ok := page == 16 || page == 32 || page == 64 || (in.mainBranch() && page == 128)
			if !ok {
				page, forcedBy = 64, b
			}
		case "trtllm_mla", "tokenspeed_mla":
			if page != 32 && page != 64 {
				page, forcedBy = 64, b
			}
		}
	}
	if !in.mainBranch() && pre == "fa4" && !in.Model.MLA && in.str("prefill_attention_backend") == "fa4" {
		page, forcedBy = 128, "fa4"
	}
	return page, forcedBy
}

// Dedup remembers, for each canonical hash, the first trial that ran it. It
// is safe for concurrent use.
type Dedup struct {
	mu    sync.Mutex
	first map[string]int
}

// NewDedup returns an empty memory.
func NewDedup() *Dedup { return &Dedup{first: map[string]int{}} }

// Claim records trial as the first to run hash unless an earlier claim exists.
// It returns the owning trial; duplicate is true when that is another trial
// (claiming again with the owner is not a duplicate: redeliveries are idempotent).
func (d *Dedup) Claim(hash string, trial int) (owner int, duplicate bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.first[hash]; ok {
		return o, o != trial
	}
	d.first[hash] = trial
	return trial, false
}

// Owner returns the trial that first ran hash.
func (d *Dedup) Owner(hash string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.first[hash]
	return o, ok
}

// Len is the number of remembered configs.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.first)
}

// DuplicateRejection is the rejection of a candidate whose canonical config
// (hash) already ran as trial owner.
func DuplicateRejection(owner int, hash string) events.Rejection {
	return events.Rejection{
		Rule:    RuleDedup,
		RuleSet: SetDedup,
		Reason: "SGLang would run this candidate exactly like trial " + itoa(owner) +
			" (canonical config " + hash + "), which already ran it.",
		Source: "sgtune canonicalisation (sglang.md §A.4 silent changes)",
	}
}
