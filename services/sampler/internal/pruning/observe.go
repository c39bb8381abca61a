package pruning

import (
	"math"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Objectives are the spec's objectives as the pruner compares them.
func Objectives(spec *study.Spec) []Objective {
	out := make([]Objective, len(spec.Objectives))
	for i, o := range spec.Objectives {
		out[i] = Objective{Name: o.Name, Unit: o.Unit, Maximize: o.Direction == study.Maximize}
	}
	return out
}

// Observe maps a running trial's measurement into the spec's objective
// space: each objective's estimate and bounds scaled as the objective
// scales its metric (a negative scale swaps the bounds), and each
// constraint with its metric's.
func Observe(spec *study.Spec, m events.Measurement) Observation {
	obs := Observation{Requests: m.Requests, Fraction: m.Fraction, Step: m.Step}
	for _, o := range spec.Objectives {
		obs.Objectives = append(obs.Objectives, bound(m, o.Metric, o.Scale))
	}
	for _, c := range spec.Constraints {
		obs.Constraints = append(obs.Constraints, Constraint{Metric: c.Metric, Max: c.Max, Min: c.Min, Value: bound(m, c.Metric, 1)})
	}
	return obs
}

func bound(m events.Measurement, metric string, scale float64) Bound {
	if scale == 0 {
		scale = 1
	}
	b := Bound{Estimate: math.NaN(), Lower: math.NaN(), Upper: math.NaN()}
	if v, ok := m.Metrics[metric]; ok {
		b.Estimate = v * scale
	}
	if v, ok := m.Lower[metric]; ok {
		b.Lower = v * scale
	}
	if v, ok := m.Upper[metric]; ok {
		b.Upper = v * scale
	}
	if scale < 0 {
		b.Lower, b.Upper = b.Upper, b.Lower
	}
	return b
}
