package study

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
)

// Objective aggregates across the workloads of a mix (Objective.Aggregate).
const (
	// AggregateWeighted is the weighted mean of the workloads' values.
	AggregateWeighted = "weighted"
	// AggregateWorst is the worst workload's value: the largest of a
	// minimised objective, the smallest of a maximised one.
	AggregateWorst = "worst"
)

// countMetrics are totals over a benchmark; across a mix they add up.
var countMetrics = []string{"completed", "failed", "duration", "total_input_tokens", "total_output_tokens"}

var workloadNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// HasMix reports whether the spec tunes for a mix of workloads.
func (s *Spec) HasMix() bool { return len(s.Workloads) > 0 }

// RunWorkloads lists the workloads a trial runs: the mix, or the one
// workload (named "" with weight 1).
func (s *Spec) RunWorkloads() []events.NamedWorkload {
	if s.HasMix() {
		return s.Workloads
	}
	return []events.NamedWorkload{{Weight: 1, Workload: s.Workload}}
}

// validateMix checks the workloads of a mix and the way the objectives and
// constraints aggregate across them.
func (s *Spec) validateMix() error {
	for i, o := range s.Objectives {
		switch o.Aggregate {
		case "", AggregateWeighted, AggregateWorst:
		default:
			return fmt.Errorf("objectives[%d].aggregate: unknown aggregate %q (known: %s, %s)", i, o.Aggregate, AggregateWeighted, AggregateWorst)
		}
	}
	if !s.HasMix() {
		return nil
	}
	names := map[string]int{}
	sum := 0.0
	for i, w := range s.Workloads {
		key := fmt.Sprintf("workloads[%d]", i)
		if !workloadNamePattern.MatchString(w.Name) {
			return fmt.Errorf("%s.name: want 1 to 64 letters, digits, '_' or '-', got %q", key, w.Name)
		}
		if j, dup := names[w.Name]; dup {
			return fmt.Errorf("%s.name: %q is also the name of workloads[%d]", key, w.Name, j)
		}
		names[w.Name] = i
		if !(w.Weight >= 0) || math.IsInf(w.Weight, 0) {
			return fmt.Errorf("%s.weight: must be a finite number >= 0, got %v", key, w.Weight)
		}
		sum += w.Weight
		if err := ValidateWorkload(key, w.Workload); err != nil {
			return err
		}
	}
	if !(sum > 0) {
		return fmt.Errorf("workloads: the weights sum to %v; they must sum to a positive number (give at least one workload a weight above 0)", sum)
	}
	_, err := s.mixAggregates()
	return err
}

// MixAggregates maps each metric the study judges by to the way it is
// aggregated across the workloads of its mix (events.Aggregate*): an
// objective's as its aggregate says (weighted by default); a constraint's,
// and a capacity search's capacity, as the worst workload's — an SLO holds
// for the mix only when it holds for every workload. A metric named
// nowhere is weighted, or summed when it is a count (MixAggregate). Nil
// without a mix.
func (s *Spec) MixAggregates() map[string]string {
	m, _ := s.mixAggregates()
	return m
}

func (s *Spec) mixAggregates() (map[string]string, error) {
	if !s.HasMix() {
		return nil, nil
	}
	out := map[string]string{}
	from := map[string]string{} // metric -> the key that set its aggregate
	set := func(metric, how, key string) error {
		if prev, ok := out[metric]; ok && prev != how {
			return fmt.Errorf("%s: %s would be aggregated across the workloads as %s, but %s aggregates it as %s; a metric has one value per trial (give the objective aggregate: %s, or drop one bound)",
				key, metric, how, from[metric], prev, AggregateWorst)
		}
		out[metric], from[metric] = how, key
		return nil
	}
	for i, c := range s.Constraints {
		key := fmt.Sprintf("constraints[%d]", i)
		if c.Max != nil && c.Min != nil {
			return nil, fmt.Errorf("%s: with workloads, a constraint bounds max or min, not both (its worst workload is checked)", key)
		}
		how := events.AggregateMax
		if c.Min != nil {
			how = events.AggregateMin
		}
		if err := set(c.Metric, how, key); err != nil {
			return nil, err
		}
	}
	for i, w := range s.Workloads {
		if w.Capacity != nil {
			if err := set(CapacityMetric(w.Capacity.Search), events.AggregateMin, fmt.Sprintf("workloads[%d].capacity", i)); err != nil {
				return nil, err
			}
		}
	}
	for i, o := range s.Objectives {
		key := fmt.Sprintf("objectives[%d].aggregate", i)
		how := events.AggregateWeighted
		switch o.Aggregate {
		case AggregateWorst:
			how = events.AggregateMax
			if o.Direction == Maximize {
				how = events.AggregateMin
			}
		case "":
			if prev, bounded := out[o.Metric]; bounded {
				how = prev // an unset aggregate follows the SLO on the metric
			}
		}
		if err := set(o.Metric, how, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MixAggregate is how metric is aggregated across a mix when aggregates
// (TrialQueued.MixAggregates) do not name it: counts add up, everything
// else is weighted.
func MixAggregate(aggregates map[string]string, metric string) string {
	if how, ok := aggregates[metric]; ok {
		return how
	}
	if slices.Contains(countMetrics, metric) {
		return events.AggregateSum
	}
	return events.AggregateWeighted
}

// AggregateMix combines the per-workload metrics of a mix into the trial's
// headline metrics, each metric as MixAggregate says. A workload without a
// metric is left out of that metric's aggregate (a weighted mean is then
// normalised over the others; with their weights all 0, it is the plain
// mean).
func AggregateMix(mix []events.NamedWorkload, aggregates map[string]string, perWorkload map[string]map[string]float64) map[string]float64 {
	names := map[string]bool{}
	for _, w := range mix {
		for k := range perWorkload[w.Name] {
			names[k] = true
		}
	}
	out := make(map[string]float64, len(names))
	for metric := range names {
		var vals, weights []float64
		for _, w := range mix {
			if v, ok := perWorkload[w.Name][metric]; ok && !math.IsNaN(v) {
				vals, weights = append(vals, v), append(weights, w.Weight)
			}
		}
		if len(vals) == 0 {
			continue
		}
		switch MixAggregate(aggregates, metric) {
		case events.AggregateMax:
			out[metric] = slices.Max(vals)
		case events.AggregateMin:
			out[metric] = slices.Min(vals)
		case events.AggregateSum:
			s := 0.0
			for _, v := range vals {
				s += v
			}
			out[metric] = s
		default:
			out[metric] = weightedMean(vals, weights)
		}
	}
	return out
}

func weightedMean(vals, weights []float64) float64 {
	sw, s := 0.0, 0.0
	for i, v := range vals {
		sw += weights[i]
		s += weights[i] * v
	}
	if sw <= 0 {
		s = 0
		for _, v := range vals {
			s += v
		}
		return s / float64(len(vals))
	}
	return s / sw
}

// MixSummary describes a mix in words ("chat 0.7, rag 0.3"), weights
// normalised.
func (s *Spec) MixSummary() string {
	sum := 0.0
	for _, w := range s.Workloads {
		sum += w.Weight
	}
	parts := make([]string, len(s.Workloads))
	for i, w := range s.Workloads {
		parts[i] = fmt.Sprintf("%s %.2g", w.Name, w.Weight/sum)
	}
	return strings.Join(parts, ", ")
}

// cloneWorkload copies w deeply, so a workload of the mix decoded over it
// does not change the base.
func cloneWorkload(w events.Workload) events.Workload {
	if w.Load != nil {
		l := *w.Load
		l.Concurrency = slices.Clone(l.Concurrency)
		l.RequestRates = slices.Clone(l.RequestRates)
		w.Load = &l
	}
	if w.Capacity != nil {
		c := *w.Capacity
		if c.SLO != nil {
			c.SLO = make(map[string]float64, len(w.Capacity.SLO))
			for k, v := range w.Capacity.SLO {
				c.SLO[k] = v
			}
		}
		w.Capacity = &c
	}
	return w
}
