package main

import (
	"math/rand/v2"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// warmSurfaces are the targets of the warm-start benchmark: each is
// related to a surface of surfaces() (the source a finished study ran on)
// the way a re-tune is: another GPU model, or a new SGLang version.
func warmSurfaces() []Surface {
	return []Surface{
		newSimSurface("sim-h200-llama8b", "H200", "llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", false),
		cliffsUpgraded{},
	}
}

// warmPairs are the warm-start benchmark's (source, target) surfaces.
var warmPairs = [][2]string{
	{"sim-h100-llama8b", "sim-h200-llama8b"},
	{"synth-cliffs", "synth-cliffs-upgraded"},
}

// cliffsUpgraded is synth-cliffs after an SGLang upgrade: faster across the
// board (fa3 decode most), the CUDA-graph crash of the torch_native
// decode backend fixed, and page size 256 no longer accepted.
type cliffsUpgraded struct{}

func (cliffsUpgraded) Name() string  { return "synth-cliffs-upgraded" }
func (cliffsUpgraded) HeldOut() bool { return false }
func (cliffsUpgraded) Describe() string {
	return "synth-cliffs after an SGLang upgrade: 10 % faster, fa3 decode 15 % more, one crash fixed, one new"
}
func (cliffsUpgraded) Spec() study.Spec { return benchSpec() }

func (cliffsUpgraded) Measure(p events.Params, gpus int) Measurement {
	if num(p, "page_size", 0) == 256 {
		return fail(events.FailCrash, "ValueError: page_size 256 is not supported by the paged allocator; use 128 or less")
	}
	dec := str(p, "attention_backend")
	if b := str(p, "decode_attention_backend"); b != "" {
		dec = b
	}
	q := p
	if dec == "torch_native" && p["cuda_graph_max_bs"] != nil {
		// Fixed: torch_native decode now runs with CUDA graphs (as without).
		q = make(events.Params, len(p))
		for k, v := range p {
			q[k] = v
		}
		q["cuda_graph_max_bs"] = nil
	}
	m := cliffs{}.Measure(q, gpus)
	if m.Failed {
		return m
	}
	f := 1.1
	if dec == "fa3" {
		f *= 1.15
	}
	return Measurement{Metrics: metrics(m.Metrics["ttft"]/1.05, m.Metrics["tps"]*f)}
}

func (cliffsUpgraded) Noisy(m Measurement, rng *rand.Rand) Measurement { return cliffs{}.Noisy(m, rng) }

// throughputOnly is a surface with one objective, output tokens/s: the
// study goptuna's single-objective TPE and CMA-ES run on.
type throughputOnly struct{ Surface }

func (s throughputOnly) Name() string { return s.Surface.Name() + "-tps" }
func (s throughputOnly) Describe() string {
	return s.Surface.Describe() + "; one objective, output tokens/s"
}
func (s throughputOnly) Spec() study.Spec {
	sp := s.Surface.Spec()
	for _, o := range sp.Objectives {
		if o.Name == "tps" {
			sp.Objectives = []study.Objective{o}
		}
	}
	return sp
}

// singleSurfaces are the single-objective surfaces (-single).
func singleSurfaces() []Surface {
	return []Surface{throughputOnly{surfaces()[0]}, throughputOnly{cliffs{}}}
}
