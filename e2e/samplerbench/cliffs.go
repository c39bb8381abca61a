package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// cliffs is a synthetic surface over the seed's 18 parameters (and rules),
// shaped unlike the simulator: power-law GPU scaling with a per-rank batch
// saturation, backend × page-size and policy × page-size interactions,
// trade-offs (max_prefill_tokens, continuous decode steps), an
// out-of-memory cliff (one GPU per replica with large prefill budgets and
// CUDA graphs), a flag that fails every launch with the same assertion, and
// two failures that need two values at once. Noise: heavy-tailed
// (Student-t, 3 degrees of freedom), heteroscedastic (larger on more GPUs)
// and correlated between TTFT and throughput (a busy host slows both).
// Tuned on.
type cliffs struct{}

func (cliffs) Name() string  { return "synth-cliffs" }
func (cliffs) HeldOut() bool { return false }
func (cliffs) Describe() string {
	return "synthetic: power-law scaling, backend/page/policy interactions, an OOM cliff, an always-failing flag, two-value crashes; Student-t noise, heteroscedastic, correlated"
}
func (cliffs) Spec() study.Spec { return benchSpec() }

var (
	cliffsPrefill = map[string]float64{"": 1, "flashinfer": 1, "fa3": 1.12, "triton": 0.85, "torch_native": 0.45, "fa4": 1.05}
	cliffsDecode  = map[string]float64{"": 1, "flashinfer": 1, "fa3": 1.08, "triton": 0.9, "torch_native": 0.4}
)

func (cliffs) Measure(p events.Params, _ int) Measurement {
	tp, dp, pp := num(p, "tp_size", 1), num(p, "dp_size", 1), num(p, "pp_size", 1)
	attn := str(p, "attention_backend")
	pre, dec := attn, attn
	if b := str(p, "prefill_attention_backend"); b != "" {
		pre = b
	}
	if b := str(p, "decode_attention_backend"); b != "" {
		dec = b
	}
	page := num(p, "page_size", 1)
	chunk := num(p, "chunked_prefill_size", 0)
	mpt := num(p, "max_prefill_tokens", 16384)
	cg := num(p, "cuda_graph_max_bs", 0)
	steps := num(p, "num_continuous_decode_steps", 1)
	tok := num(p, "tokenizer_worker_num", 1)
	pol := str(p, "schedule_policy")

	// Failures.
	if p["enable_two_batch_overlap"] == true {
		return fail(events.FailCrash, "AssertionError: two-batch overlap requires a MoE model with --moe-a2a-backend deepep")
	}
	if dec == "fa4" {
		return fail(events.FailCrash, "ValueError: FA4 backend is only supported for prefill; set --decode-attention-backend")
	}
	if pp > 1 && p["enable_mixed_chunk"] == true {
		return fail(events.FailCrash, fmt.Sprintf("fatal: mixed chunked prefill is not supported with pipeline parallelism (pp=%d)", int(pp)))
	}
	if dec == "torch_native" && cg > 0 {
		return fail(events.FailCrash, "RuntimeError: CUDA error: operation not permitted when stream is capturing")
	}
	prefillTokens := chunk
	if chunk == 0 {
		prefillTokens = mpt
	}
	graphBS := cg
	if cg == 0 {
		graphBS = 48
	}
	mem := 16/(tp*pp) + 0.12*graphBS + 0.0009*prefillTokens
	if p["enable_torch_compile"] == true {
		mem += 6
	}
	if mem > 78 {
		return fail(events.FailOOM, fmt.Sprintf("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate %.2f GiB. GPU 0 has a total capacity of 79.11 GiB of which %.0f MiB is free.",
			mem-70, 1024*(79.11-math.Min(mem, 79))))
	}

	pf, df := cliffsPrefill[pre], cliffsDecode[dec]
	if dec == "triton" {
		if page >= 64 {
			df *= 1.1
		} else {
			df *= 0.95
		}
	}
	perRank := 64 / dp
	tps := 1400 * math.Pow(dp, 0.95) * math.Pow(tp, 0.7) * math.Pow(pp, 0.5) * df * math.Pow(math.Min(1, perRank/12), 0.3)
	ttft := (0.09 + 1.6/(math.Pow(tp, 0.85)*math.Pow(dp, 0.6)*pf)) * (1 + 0.2*(pp-1))

	pageF := map[float64]float64{1: 1, 16: 1, 32: 1.02, 64: 1.03, 128: 1.01, 256: 0.96}[page]
	tps *= pageF
	switch pol {
	case "lpm":
		if page <= 16 {
			tps *= 1.06
		} else if page >= 128 {
			tps *= 0.92
		}
	case "random":
		ttft *= 1.05
	case "dfs-weight":
		tps, ttft = tps*0.98, ttft*0.97
	case "lof":
		tps, ttft = tps*1.02, ttft*1.15
	}
	switch {
	case chunk == 512:
		ttft, tps = ttft*1.15, tps*0.95
	case chunk == 1024:
		ttft *= 1.05
	}
	r := math.Log2(mpt / 4096)
	tps *= 1 + 0.04*r
	ttft *= 1 + 0.05*r
	if cg == 0 {
		tps *= 1.1
	} else if cg >= perRank {
		tps *= 1.15
	}
	ls := math.Log2(steps)
	tps *= 1 + 0.05*ls
	ttft *= 1 + 0.12*ls
	if p["disable_overlap_schedule"] == true {
		tps *= 0.9
	}
	if p["enable_mixed_chunk"] == true {
		if chunk > 0 && chunk <= 4096 {
			ttft *= 0.9
		}
		tps *= 0.97
	}
	if p["enable_torch_compile"] == true {
		if tp <= 2 {
			tps *= 1.06
		}
		ttft *= 1.02
	}
	switch {
	case tok == 2 || tok == 4:
		ttft *= 0.97
	case tok >= 8:
		ttft *= 1.03
	}
	if str(p, "sampling_backend") == "pytorch" {
		tps *= 0.96
	}
	return Measurement{Metrics: metrics(ttft, tps)}
}

func (cliffs) Noisy(m Measurement, rng *rand.Rand) Measurement {
	if m.Failed {
		return m
	}
	tps, ttft := m.Metrics["tps"], m.Metrics["ttft"]
	gpusish := math.Max(1, tps/1400)
	busy := 0.7 * studentT(3, rng) * 0.02
	sdTPS := 0.02 + 0.01*math.Log2(gpusish)
	tps *= math.Exp(0.7*studentT(3, rng)*sdTPS - busy)
	ttft *= math.Exp(0.7*studentT(3, rng)*0.05 + busy)
	return Measurement{Metrics: metrics(ttft, tps)}
}

func fail(class, line string) Measurement {
	return Measurement{Failed: true, Class: class, Stderr: line}
}
