package main

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Surface is a response surface a study is benchmarked on: what one launch
// of a configuration yields. The validator's rules are not the surface's:
// they come from the spec (the offline harness calls validator.Check, the
// services harness runs the validator).
type Surface interface {
	// Name identifies the surface (-surfaces, the exec backend's -surface).
	Name() string
	// HeldOut reports whether the surface is held out: written before the
	// sampler was tuned and never tuned on.
	HeldOut() bool
	// Describe says in a line what the surface is.
	Describe() string
	// Spec is the study: space, rules, objectives, workload, model.
	Spec() study.Spec
	// Measure is one launch of p on gpus GPUs, noise-free.
	Measure(p events.Params, gpus int) Measurement
	// Noisy perturbs a completed measurement (rng is seeded per trial).
	Noisy(m Measurement, rng *rand.Rand) Measurement
}

// Measurement is what a launch yields: metrics, or a failure with the line
// the server or benchmark command printed last (stderr).
type Measurement struct {
	Failed  bool
	Class   string // events.Fail* of a failure
	Stderr  string // a failure's output, as the runner's reason and log tail carry it
	Metrics map[string]float64
}

// benchSpec is the benchmark's study: the default (the seed's 18
// parameters, TTFT against output tokens/s) with the seed's rules only. The
// sglang rule set would refuse most of the surfaces' failures before
// launch; the benchmark measures what the sampler learns from launches.
func benchSpec() study.Spec {
	sp := study.Default()
	sp.Rules.Sets = []string{"seed"}
	return sp
}

// surfaces are the benchmark's surfaces: tuned on the first two, the
// others held out (synth-knee written after the acquisition climb).
func surfaces() []Surface {
	return []Surface{
		newSimSurface("sim-h100-llama8b", "H100", "llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", false),
		cliffs{},
		newSimSurface("sim-a100-qwen30b-moe", "A100-80G", "qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", true),
		ridge{},
		knee{},
	}
}

func surfaceByName(name string) (Surface, bool) {
	for _, s := range allSurfaces() {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// allSurfaces adds the warm-start benchmark's related surfaces.
func allSurfaces() []Surface {
	return append(append(surfaces(), warmSurfaces()...), singleSurfaces()...)
}

func surfaceNames(ss []Surface) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	sort.Strings(out)
	return out
}

// configHash is a deterministic hash of a configuration (for per-config
// jitter that does not change from run to run).
func configHash(p events.Params, salt string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte(study.ParamsKey(p)))
	return h.Sum64()
}

// unit is a deterministic number in [0, 1) for a configuration.
func unit(p events.Params, salt string) float64 {
	return float64(configHash(p, salt)>>11) / float64(1<<53)
}

// trialRNG is the noise source of one trial of one study.
func trialRNG(study string, trial int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(study))
	return rand.New(rand.NewPCG(h.Sum64(), uint64(trial)+0x9e3779b9))
}

// defaultDuration is a trial's simulated length: a server start that grows
// with the GPUs it spans (and torch.compile), plus the benchmark, with a
// per-config jitter; a failed launch ends during start-up.
func defaultDuration(p events.Params, gpus int, failed bool) float64 {
	start := 60 + 20*math.Log2(float64(max(gpus, 1)))
	if p["enable_torch_compile"] == true {
		start += 150
	}
	bench := 60.0
	if failed {
		return start * (0.3 + 0.4*unit(p, "fail-dur"))
	}
	return (start + bench) * (0.8 + 0.4*unit(p, "dur"))
}

// str is a parameter as a string ("" for None).
func str(p events.Params, name string) string {
	if v, ok := p[name]; ok && v != nil {
		return strings.ToLower(study.FormatValue(v))
	}
	return ""
}

// num is a numeric parameter (def for None or missing).
func num(p events.Params, name string, def float64) float64 {
	switch v := p[name].(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return def
}

// metrics builds the two objectives' metrics.
func metrics(ttftS, tps float64) map[string]float64 {
	return map[string]float64{"mean_ttft_ms": ttftS * 1000, "output_throughput": tps, "ttft": ttftS, "tps": tps}
}

// lognormal multiplies v by exp(N(0, sd)).
func lognormal(v, sd float64, rng *rand.Rand) float64 { return v * math.Exp(sd*rng.NormFloat64()) }

// studentT draws a Student-t variate with nu degrees of freedom.
func studentT(nu float64, rng *rand.Rand) float64 {
	z := rng.NormFloat64()
	chi := 0.0
	for range int(nu) {
		g := rng.NormFloat64()
		chi += g * g
	}
	return z / math.Sqrt(chi/nu)
}
