package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// ridge is a HELD-OUT synthetic surface over the seed's 18 parameters (and
// rules), written before the sampler was tuned and never tuned on. Its
// shape differs from both the simulator and synth-cliffs: throughput grows
// with the GPU count however it is split, while the split trades TTFT (tp)
// against throughput (dp), so the front is wide; chunked_prefill_size and
// max_prefill_tokens have a joint optimum off the corner (a quadratic ridge
// in their logs); the best decode backend depends on the page size; the
// overlap scheduler matters unless decode steps are batched; a flag fails
// unless another is set (mixed chunk needs the overlap scheduler off), one
// flag always fails, two backends fail on some splits, and torch.compile
// with large CUDA graphs on one GPU runs out of memory. Noise: 3 %
// lognormal plus stragglers (6 % of runs lose a fifth of their throughput
// and take 30 % longer to the first token).
type ridge struct{}

func (ridge) Name() string  { return "synth-ridge" }
func (ridge) HeldOut() bool { return true }
func (ridge) Describe() string {
	return "synthetic, held out: tp/dp trade-off ridge, joint chunk/prefill optimum, page-dependent decode backends, conditional and always-failing flags, an OOM region; lognormal noise with stragglers"
}
func (ridge) Spec() study.Spec { return benchSpec() }

var ridgeDecode = map[string]map[bool]float64{ // backend -> small page (None/16/32) -> factor
	"":             {true: 1.0, false: 0.94},
	"flashinfer":   {true: 1.0, false: 0.94},
	"fa3":          {true: 0.9, false: 1.12},
	"triton":       {true: 0.92, false: 0.92},
	"torch_native": {true: 0.5, false: 0.5},
}

func (ridge) Measure(p events.Params, _ int) Measurement {
	tp, dp, pp := num(p, "tp_size", 1), num(p, "dp_size", 1), num(p, "pp_size", 1)
	g := tp * dp * pp
	attn := str(p, "attention_backend")
	dec := attn
	if b := str(p, "decode_attention_backend"); b != "" {
		dec = b
	}
	pre := attn
	if b := str(p, "prefill_attention_backend"); b != "" {
		pre = b
	}
	page := num(p, "page_size", 1)
	chunk := num(p, "chunked_prefill_size", 8192)
	chunkSet := p["chunked_prefill_size"] != nil
	mpt := num(p, "max_prefill_tokens", 16384)
	cg := num(p, "cuda_graph_max_bs", 48)
	steps := num(p, "num_continuous_decode_steps", 1)
	tok := num(p, "tokenizer_worker_num", 1)
	overlapOff := p["disable_overlap_schedule"] == true

	if p["enable_two_batch_overlap"] == true {
		return fail(events.FailCrash, "AssertionError: enable_two_batch_overlap is only supported for DeepSeek-style MoE models")
	}
	if p["enable_mixed_chunk"] == true && !overlapOff {
		return fail(events.FailCrash, "ValueError: --enable-mixed-chunk is not supported with the overlap scheduler; pass --disable-overlap-schedule")
	}
	if (attn == "torch_native" || pre == "torch_native" || dec == "torch_native") && tp >= 4 {
		return fail(events.FailCrash, fmt.Sprintf("RuntimeError: torch_native attention does not support tensor parallel size %d", int(tp)))
	}
	if dec == "fa4" {
		return fail(events.FailCrash, "error: fa4 decode kernels are not available on sm_90 (pid 31337)")
	}
	prefillTokens := chunk
	if !chunkSet {
		prefillTokens = mpt
	}
	mem := 18/(tp*pp) + 0.16*cg + 0.0012*prefillTokens
	if p["enable_torch_compile"] == true {
		mem += 8
	}
	if mem > 76 {
		return fail(events.FailOOM, fmt.Sprintf("RuntimeError: CUDA error: out of memory (requested %.1f GiB on device %d)", mem-70, int(tp)-1))
	}

	small := page <= 32
	tps := 2200 * math.Pow(g, 0.8) * math.Pow(dp/g, 0.15) * (1 - 0.12*math.Log2(pp))
	ttft := 0.6 / math.Pow(tp, 0.9) * (1 + 0.35*math.Log2(pp)) * (1 + 0.1*math.Log2(dp))
	tps *= ridgeDecode[dec][small]
	switch pre {
	case "fa3":
		ttft *= 0.9
	case "triton":
		ttft *= 1.08
	case "fa4":
		ttft *= 0.88
	}
	lc, lm := math.Log2(chunk/2048), math.Log2(mpt/16384)
	ttft *= 1 + 0.03*lc*lc + 0.02*lm*lm + 0.015*lc*lm
	tps *= 1 - 0.01*lm*lm
	switch str(p, "schedule_policy") {
	case "lpm":
		if page == 1 {
			tps *= 1.08
		} else {
			tps *= 0.97
		}
	case "dfs-weight":
		if tok >= 4 {
			ttft *= 0.93
		}
	case "lof":
		ttft *= 1.1
	case "random":
		tps *= 0.99
	}
	perRank := 64 / dp
	tps *= math.Pow(math.Min(cg, perRank)/perRank, 0.25)
	tps *= 1 + 0.03*math.Min(math.Log2(steps), 2)
	ttft *= 1 + 0.08*math.Log2(steps)
	if overlapOff {
		if steps >= 4 {
			tps *= 0.98
		} else {
			tps *= 0.88
		}
	}
	if p["enable_mixed_chunk"] == true {
		ttft *= 0.92
	}
	if p["enable_torch_compile"] == true && cg <= 32 {
		tps *= 1.09
	}
	switch str(p, "sampling_backend") {
	case "pytorch":
		ttft *= 1.04
	case "flashinfer":
		tps *= 1.01
	}
	ttft *= 1 + 0.02*math.Abs(math.Log2(tok)-2)
	return Measurement{Metrics: metrics(ttft, tps)}
}

func (ridge) Noisy(m Measurement, rng *rand.Rand) Measurement {
	if m.Failed {
		return m
	}
	tps := lognormal(m.Metrics["tps"], 0.03, rng)
	ttft := lognormal(m.Metrics["ttft"], 0.03, rng)
	if rng.Float64() < 0.06 {
		tps, ttft = tps*0.8, ttft*1.3
	}
	return Measurement{Metrics: metrics(ttft, tps)}
}
