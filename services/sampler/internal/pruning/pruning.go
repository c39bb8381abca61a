// Package pruning decides whether a running trial should be stopped early:
// given what it has measured so far and the study's current Pareto front, it
// stops the trial when even an optimistic reading of its measurement — each
// objective moved towards better by its noise allowance, within any hard
// bound the measurement's structure gives — is dominated by a front member,
// or when it already misses an SLO beyond that allowance. It is the
// multi-objective analogue of Optuna's threshold and percentile pruners,
// with the noise band of a short measurement in place of their fixed
// margins. Pure: no NATS, no clock.
package pruning

import (
	"fmt"
	"math"
	"strings"
)

// Policy tunes the pruner. The zero value takes every default.
type Policy struct {
	// Z is how many standard errors the optimistic bound grants each
	// objective (default 2: about one finished trial in 40 that would have
	// reached the front is stopped, for a normal estimate).
	Z float64
	// NoiseFloor is the relative noise of a finished measurement, run to run
	// (default 0.05: the simulator's is 0.03, real servers 2–5 %).
	NoiseFloor float64
	// RequestCV is the per-request coefficient of variation assumed for an
	// estimate from n requests: its relative standard error is
	// RequestCV/sqrt(n) on top of the floor (default 1).
	RequestCV float64
	// MinRequests and MinFraction: no decision on fewer completed requests
	// or a smaller share of the plan measured (defaults 16 and 0.1).
	MinRequests int
	MinFraction float64
	// MaxFraction: no stop once this share is measured, there is little
	// left to save (default 0.8).
	MaxFraction float64
}

// WithDefaults fills the zero fields.
func (p Policy) WithDefaults() Policy {
	if p.Z <= 0 {
		p.Z = 2
	}
	if p.NoiseFloor <= 0 {
		p.NoiseFloor = 0.05
	}
	if p.RequestCV <= 0 {
		p.RequestCV = 1
	}
	if p.MinRequests <= 0 {
		p.MinRequests = 16
	}
	if p.MinFraction <= 0 {
		p.MinFraction = 0.1
	}
	if p.MaxFraction <= 0 {
		p.MaxFraction = 0.8
	}
	return p
}

// Objective is one objective of the study, as the pruner compares it.
type Objective struct {
	Name     string
	Unit     string
	Maximize bool
}

// Member is one point of the front: a finished feasible trial's objective
// values (spec units and directions, in Objective order).
type Member struct {
	Trial  int
	Values []float64
}

// Bound is a measured quantity: its estimate so far and any hard bounds on
// its final value (NaN: none).
type Bound struct {
	Estimate     float64
	Lower, Upper float64
}

// Estimate is a Bound with no hard bounds.
func Estimate(v float64) Bound { return Bound{Estimate: v, Lower: math.NaN(), Upper: math.NaN()} }

// Constraint is an SLO the trial must meet, with its measured metric.
type Constraint struct {
	Metric   string
	Max, Min *float64
	Value    Bound
}

// Observation is a running trial's measurement, in objective space.
type Observation struct {
	// Objectives holds one Bound per study objective, in order.
	Objectives []Bound
	// Constraints are the study's SLOs with their measured metrics.
	Constraints []Constraint
	// Requests is how many measured requests the estimates rest on;
	// Fraction the share of the trial's plan measured; Step the trial's
	// checkpoint number (events.Measurement.Step, for the calibration).
	Requests int
	Fraction float64
	Step     int
}

// Decision is the pruner's verdict on one observation.
type Decision struct {
	// Stop is true when the trial should be stopped.
	Stop bool
	// Reason says why, in words (also why not, when Stop is false).
	Reason string
	// Optimistic are the objectives' optimistic values the decision used.
	Optimistic []float64
}

// RelativeError is the relative standard error the policy grants an
// estimate from n requests.
func (p Policy) RelativeError(n int) float64 {
	p = p.WithDefaults()
	n = max(n, 1)
	return math.Sqrt(p.NoiseFloor*p.NoiseFloor + p.RequestCV*p.RequestCV/float64(n))
}

// optimistic moves b towards better by z relative standard errors, within
// its hard bounds: up for a maximised quantity, down for a minimised one.
func optimistic(b Bound, maximize bool, margin float64) float64 {
	v := b.Estimate
	d := margin * math.Abs(v)
	if maximize {
		v += d
		if !math.IsNaN(b.Upper) {
			v = math.Min(v, b.Upper)
		}
		if !math.IsNaN(b.Lower) {
			v = math.Max(v, b.Lower)
		}
		return v
	}
	v -= d
	if !math.IsNaN(b.Lower) {
		v = math.Max(v, b.Lower)
	}
	if !math.IsNaN(b.Upper) {
		v = math.Min(v, b.Upper)
	}
	return v
}

// Decide judges obs against front. A trial is stopped when it has measured
// enough (MinRequests, MinFraction) but not nearly everything (MaxFraction)
// and either a constraint is missed even optimistically, or some front
// member is at least as good as the trial's optimistic values in every
// objective.
//
// cal, when it has enough finished trials at obs.Step, replaces the noise
// model's band on the objectives by the most favourable final/partial
// ratio those trials showed (see Calibration); nil: the noise model alone.
func Decide(p Policy, objectives []Objective, front []Member, obs Observation, cal *Calibration) Decision {
	p = p.WithDefaults()
	switch {
	case len(obs.Objectives) != len(objectives):
		return Decision{Reason: fmt.Sprintf("observation has %d objectives, the study %d", len(obs.Objectives), len(objectives))}
	case obs.Requests < p.MinRequests:
		return Decision{Reason: fmt.Sprintf("only %d requests measured (needs %d)", obs.Requests, p.MinRequests)}
	case obs.Fraction < p.MinFraction:
		return Decision{Reason: fmt.Sprintf("only %.0f%% measured (needs %.0f%%)", 100*obs.Fraction, 100*p.MinFraction)}
	case obs.Fraction > p.MaxFraction:
		return Decision{Reason: fmt.Sprintf("%.0f%% measured: little left to save", 100*obs.Fraction)}
	}
	margin := p.Z * p.RelativeError(obs.Requests)
	for _, c := range obs.Constraints {
		if math.IsNaN(c.Value.Estimate) {
			continue
		}
		if c.Max != nil {
			if v := optimistic(c.Value, false, margin); v > *c.Max {
				return Decision{Stop: true, Reason: fmt.Sprintf("misses the SLO %s <= %.4g even optimistically (%.4g, estimate %.4g after %d requests)",
					c.Metric, *c.Max, v, c.Value.Estimate, obs.Requests)}
			}
		}
		if c.Min != nil {
			if v := optimistic(c.Value, true, margin); v < *c.Min {
				return Decision{Stop: true, Reason: fmt.Sprintf("misses the SLO %s >= %.4g even optimistically (%.4g, estimate %.4g after %d requests)",
					c.Metric, *c.Min, v, c.Value.Estimate, obs.Requests)}
			}
		}
	}
	// An objective not measured yet (NaN, e.g. a weighted mean over a mix
	// not all run) could still be anything: optimistically the best.
	opt := make([]float64, len(objectives))
	unknown := []string{}
	for k, o := range objectives {
		b := obs.Objectives[k]
		switch {
		case math.IsNaN(b.Estimate) || math.IsInf(b.Estimate, 0):
			// No estimate, but maybe a bound on the good side (a capacity
			// search's level that missed the SLO caps its throughput); the
			// bound is itself a measurement, so it gets the noise floor.
			floor := p.Z * p.NoiseFloor
			switch {
			case o.Maximize && !math.IsNaN(b.Upper):
				opt[k] = b.Upper + floor*math.Abs(b.Upper)
			case !o.Maximize && !math.IsNaN(b.Lower):
				opt[k] = b.Lower - floor*math.Abs(b.Lower)
			case o.Maximize:
				opt[k] = math.Inf(1)
				unknown = append(unknown, o.Name)
			default:
				opt[k] = math.Inf(-1)
				unknown = append(unknown, o.Name)
			}
		default:
			opt[k] = optimistic(b, o.Maximize, margin)
			if ratio, n := cal.band(obs.Step, k, o.Maximize); n >= MinCalibration {
				// What finished trials of this study did after this step,
				// widened by the noise floor; within the hard bounds.
				w := 1 - p.NoiseFloor
				if o.Maximize {
					w = 1 + p.NoiseFloor
				}
				c := optimistic(Bound{Estimate: b.Estimate * ratio * w, Lower: b.Lower, Upper: b.Upper}, o.Maximize, 0)
				if n >= MaxCalibration || better(c, opt[k], o.Maximize) {
					opt[k] = c
				}
			}
		}
	}
	if len(unknown) > 0 {
		return Decision{Optimistic: opt, Reason: "not measured yet: " + strings.Join(unknown, ", ")}
	}
	for _, m := range front {
		if len(m.Values) == len(objectives) && atLeastAsGood(m.Values, opt, objectives) {
			return Decision{Stop: true, Optimistic: opt, Reason: fmt.Sprintf("even optimistically (%s, after %d requests, %.0f%% measured) it is dominated by trial %d (%s)",
				describe(objectives, opt), obs.Requests, 100*obs.Fraction, m.Trial, describe(objectives, m.Values))}
		}
	}
	return Decision{Optimistic: opt, Reason: fmt.Sprintf("its optimistic bound (%s) is not dominated", describe(objectives, opt))}
}

func better(a, b float64, maximize bool) bool {
	if maximize {
		return a > b
	}
	return a < b
}

// atLeastAsGood reports whether a is as good as b or better in every objective.
func atLeastAsGood(a, b []float64, objectives []Objective) bool {
	for k, o := range objectives {
		if o.Maximize && a[k] < b[k] || !o.Maximize && a[k] > b[k] {
			return false
		}
	}
	return true
}

func describe(objectives []Objective, vals []float64) string {
	parts := make([]string, len(objectives))
	for k, o := range objectives {
		parts[k] = fmt.Sprintf("%s %.4g", o.Name, vals[k])
		if o.Unit != "" {
			parts[k] += " " + o.Unit
		}
	}
	return strings.Join(parts, ", ")
}
