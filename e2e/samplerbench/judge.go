package main

import (
	"sync"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

// verdict is what the validator and a noise-free launch make of a
// configuration.
type verdict struct {
	rejected  bool
	rules     []string
	canonical string
	gpus      int
	m         Measurement
}

// judge checks p with the validator's own rules (validator.Check on the
// surface's spec) and measures it when valid, noise-free; verdicts are
// cached by configuration. Safe for concurrent use.
type judge struct {
	surf Surface
	spec study.Spec
	mu   sync.Mutex
	memo map[string]verdict
}

func newJudge(s Surface) *judge {
	return &judge{surf: s, spec: s.Spec(), memo: map[string]verdict{}}
}

func (j *judge) judge(p events.Params, baseline bool) verdict {
	k := study.ParamsKey(p)
	if baseline {
		k = "baseline:" + k
	}
	j.mu.Lock()
	v, ok := j.memo[k]
	j.mu.Unlock()
	if ok {
		return v
	}
	cv, err := validator.Check(j.spec, p, validator.CheckOptions{Baseline: baseline})
	switch {
	case err != nil:
		v = verdict{rejected: true, rules: []string{"safety.bad_input"}}
	case !cv.Valid:
		v = verdict{rejected: true}
		for _, r := range cv.Rejections {
			v.rules = append(v.rules, r.Rule)
		}
	default:
		v = verdict{canonical: cv.CanonicalHash, gpus: cv.GPUs, m: trim(j.surf.Measure(p, cv.GPUs))}
	}
	j.mu.Lock()
	j.memo[k] = v
	j.mu.Unlock()
	return v
}

// values are a verdict's objective values when it is feasible (the spec's
// objectives, units and directions), else nil.
func (j *judge) values(v verdict) []float64 {
	if v.rejected || v.m.Failed {
		return nil
	}
	vals, ok := j.spec.ObjectiveValues(v.m.Metrics)
	if !ok || len(j.spec.Violations(v.m.Metrics)) > 0 {
		return nil
	}
	return vals
}

// trim keeps the metrics the benchmark reads (the objectives and the exec
// backend's ttft/tps), so the memo stays small.
func trim(m Measurement) Measurement {
	if m.Metrics == nil {
		return m
	}
	out := make(map[string]float64, 4)
	for _, k := range []string{"mean_ttft_ms", "output_throughput", "ttft", "tps"} {
		if v, ok := m.Metrics[k]; ok {
			out[k] = v
		}
	}
	m.Metrics = out
	return m
}

// judgeFresh is judge without the memo (the reference search evaluates
// hundreds of thousands of configurations once each).
func (j *judge) judgeFresh(p events.Params) verdict {
	cv, err := validator.Check(j.spec, p, validator.CheckOptions{})
	switch {
	case err != nil:
		return verdict{rejected: true, rules: []string{"safety.bad_input"}}
	case !cv.Valid:
		return verdict{rejected: true}
	}
	return verdict{canonical: cv.CanonicalHash, gpus: cv.GPUs, m: trim(j.surf.Measure(p, cv.GPUs))}
}
