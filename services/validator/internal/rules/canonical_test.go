package rules

import (
	"encoding/json"
	"regexp"
	"sync"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestCanonicalize_merges_what_SGLang_merges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Input
	}{
		{"tp None is 1", input(set("tp_size", nil)), input(set("tp_size", 1))},
		{"absent is None", input(drop("sampling_backend", "page_size")), input()},
		{"max_prefill_tokens None is 16384", input(set("max_prefill_tokens", nil)), input(set("max_prefill_tokens", 16384))},
		{"flag None is false", input(set("enable_mixed_chunk", nil)), input()},
		{"page None is 1 on CUDA", input(set("page_size", nil)), input(set("page_size", 1))},
		{"static or candidate", input(drop("tp_size"), static("tp_size", 2)), input(set("tp_size", 2))},
		{"pp>1 turns overlap off", input(set("pp_size", 2)), input(set("pp_size", 2, "disable_overlap_schedule", true))},
		{"torch_native ignores graph bs", input(set("attention_backend", "torch_native", "cuda_graph_max_bs", 8)),
			input(set("attention_backend", "torch_native", "cuda_graph_max_bs", 96))},
		{"torch_native ignores torch.compile", input(set("attention_backend", "torch_native", "enable_torch_compile", true)),
			input(set("attention_backend", "torch_native"))},
		{"disable_cuda_graph ignores graph bs", input(static("disable_cuda_graph", true), set("cuda_graph_max_bs", 16)),
			input(static("disable_cuda_graph", true), set("cuda_graph_max_bs", nil))},
		{"torch_native is disable_cuda_graph", input(set("attention_backend", "torch_native")),
			input(set("attention_backend", "torch_native"), static("disable_cuda_graph", true))},
		{"chunk disabled spellings", input(set("chunked_prefill_size", 0)), input(set("chunked_prefill_size", -1))},
		{"mixed chunk ignored without chunking", input(set("chunked_prefill_size", -1, "enable_mixed_chunk", true)),
			input(set("chunked_prefill_size", -1))},
		{"equal phase backends fold", input(set("attention_backend", nil, "prefill_attention_backend", "triton", "decode_attention_backend", "triton")),
			input(set("attention_backend", "triton"))},
		{"redundant phase backend", input(set("attention_backend", "triton", "prefill_attention_backend", "triton")),
			input(set("attention_backend", "triton"))},
		{"fa3 with fp8_e5m2 runs triton", input(set("attention_backend", "fa3"), static("kv_cache_dtype", "fp8_e5m2")),
			input(set("attention_backend", "triton"), static("kv_cache_dtype", "fp8_e5m2"))},
		{"dp 1 drops dp attention", input(static("enable_dp_attention", true)), input()},
		{"flashmla forces page 64", input(set("attention_backend", "flashmla", "page_size", 16)), input(set("attention_backend", "flashmla", "page_size", 64))},
		{"torch_compile_max_bs without compile", input(static("torch_compile_max_bs", 64)), input()},
		{"lpm without radix cache", input(set("schedule_policy", "lpm"), static("disable_radix_cache", true)),
			input(set("schedule_policy", "fcfs"), static("disable_radix_cache", true))},
		{"deterministic forces pytorch sampling", input(set("sampling_backend", "flashinfer"), static("enable_deterministic_inference", true)),
			input(set("sampling_backend", nil), static("enable_deterministic_inference", true))},
		{"speculative decoding turns overlap off", input(static("speculative_algorithm", "EAGLE")),
			input(static("speculative_algorithm", "EAGLE"), set("disable_overlap_schedule", true))},
		{"dp attention splits the chunk", input(static("enable_dp_attention", true), set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 4096)),
			input(static("enable_dp_attention", true), set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 4097))},
		{"dual chunk attention drops mixed chunk and radix cache", input(set("attention_backend", "dual_chunk_flash_attn", "enable_mixed_chunk", true)),
			input(set("attention_backend", "dual_chunk_flash_attn"), static("disable_radix_cache", true))},
		{"a2a backend sets ep", input(static("moe_a2a_backend", "deepep", "ep_size", 1), set("tp_size", 4)),
			input(static("moe_a2a_backend", "deepep", "ep_size", 4), set("tp_size", 4))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, cb := Canonicalize(tc.a), Canonicalize(tc.b)
			if ca.Hash() != cb.Hash() {
				t.Fatalf("not merged:\n a = %s\n b = %s", mustJSON(ca), mustJSON(cb))
			}
		})
	}
}

func TestCanonicalize_keeps_what_SGLang_does_not_merge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Input
	}{
		{"tp", input(set("tp_size", 1)), input(set("tp_size", 2))},
		{"chunk None depends on the GPU", input(set("chunked_prefill_size", nil)), input(set("chunked_prefill_size", 8192))},
		{"graph bs None depends on the GPU", input(set("cuda_graph_max_bs", nil)), input(set("cuda_graph_max_bs", 256))},
		{"sampling None depends on the install", input(set("sampling_backend", nil)), input(set("sampling_backend", "flashinfer"))},
		{"attention None depends on the GPU", input(set("attention_backend", nil)), input(set("attention_backend", "flashinfer"))},
		{"overlap matters with pp 1", input(), input(set("disable_overlap_schedule", true))},
		{"graph bs matters with CUDA graphs", input(set("cuda_graph_max_bs", 8)), input(set("cuda_graph_max_bs", 16))},
		{"torch.compile matters with CUDA graphs", input(), input(set("enable_torch_compile", true))},
		{"mixed chunk matters with chunking", input(), input(set("enable_mixed_chunk", true))},
		{"decode steps kept", input(), input(set("num_continuous_decode_steps", 2))},
		{"hybrid keeps attention_backend", input(set("attention_backend", "triton", "prefill_attention_backend", "fa3")),
			input(set("attention_backend", nil, "prefill_attention_backend", "fa3", "decode_attention_backend", "triton"))},
		{"page matters for flashinfer", input(), input(set("page_size", 16))},
		{"trtllm_mha keeps page 32", input(set("attention_backend", "trtllm_mha", "page_size", 32)), input(set("attention_backend", "trtllm_mha", "page_size", 64))},
		{"dp attention with dp 2", input(set("dp_size", 2)), input(set("dp_size", 2), static("enable_dp_attention", true))},
		{"dp attention chunks differ", input(static("enable_dp_attention", true), set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 4096)),
			input(static("enable_dp_attention", true), set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 8192))},
		{"dp attention chunk is not plain dp chunk", input(static("enable_dp_attention", true), set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 4096)),
			input(set("dp_size", 2, "tp_size", 2, "chunked_prefill_size", 2048))},
		{"overlap matters without speculative decoding", input(), input(set("disable_overlap_schedule", true))},
		{"model", input(), input(func(in *Input) { in.ModelPath = "other" })},
		{"version", input(), input(version("main"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca, cb := Canonicalize(tc.a), Canonicalize(tc.b)
			if ca.Hash() == cb.Hash() {
				t.Fatalf("merged, but SGLang runs them differently:\n a = %s\n b = %s", mustJSON(ca), mustJSON(cb))
			}
		})
	}
}

func TestCanonical_Hash_is_stable(t *testing.T) {
	t.Parallel()
	h := CanonicalHash(input())
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(h) {
		t.Fatalf("hash %q is not 32 hex digits", h)
	}
	for range 20 {
		if got := CanonicalHash(input()); got != h {
			t.Fatalf("hash changed between calls: %s vs %s", got, h)
		}
	}
	// A spec round trip through JSON (numbers become float64) gives the same hash.
	spec := study.Default()
	b, _ := json.Marshal(baseParams())
	var decoded events.Params
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if got := CanonicalHash(NewInput(&spec, decoded, 0, nil)); got != h {
		t.Fatalf("hash after JSON round trip %s, want %s", got, h)
	}
	// Everything else of the base candidate is at SGLang's default.
	if c := Canonicalize(input()); len(c.Args) != 2 || c.Args["attention_backend"] != "flashinfer" || c.Args["chunked_prefill_size"] != 4096 {
		t.Fatalf("canonical args %v, want only attention_backend and chunked_prefill_size", c.Args)
	}
}

func TestDedup_Claim(t *testing.T) {
	t.Parallel()
	d := NewDedup()
	if owner, dup := d.Claim("h1", 3); owner != 3 || dup {
		t.Fatalf("first claim: %d %v", owner, dup)
	}
	if owner, dup := d.Claim("h1", 3); owner != 3 || dup {
		t.Fatalf("redelivered claim must not be a duplicate: %d %v", owner, dup)
	}
	if owner, dup := d.Claim("h1", 7); owner != 3 || !dup {
		t.Fatalf("second trial: %d %v", owner, dup)
	}
	if o, ok := d.Owner("h1"); !ok || o != 3 || d.Len() != 1 {
		t.Fatalf("Owner = %d %v, Len %d", o, ok, d.Len())
	}
	r := DuplicateRejection(3, "abc")
	if r.Rule != RuleDedup || r.RuleSet != SetDedup || r.Reason == "" {
		t.Fatalf("bad rejection %+v", r)
	}
}

func TestDedup_Claim_ConcurrentSafe(t *testing.T) {
	t.Parallel()
	d := NewDedup()
	var wg sync.WaitGroup
	owners := make([]int, 32)
	for i := range owners {
		wg.Go(func() { owners[i], _ = d.Claim("h", i) })
	}
	wg.Wait()
	for _, o := range owners {
		if o != owners[0] {
			t.Fatalf("claims disagree on the owner: %v", owners)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
