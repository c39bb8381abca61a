package study

import (
	"fmt"

	"github.com/sgtune/sgtune/pkg/events"
)

// ObjectiveValues reads each objective's scaled value from a trial's metrics.
// ok is false when a metric is missing.
func (s *Spec) ObjectiveValues(metrics map[string]float64) (values []float64, ok bool) {
	values = make([]float64, len(s.Objectives))
	for i, o := range s.Objectives {
		v, found := metrics[o.Metric]
		if !found {
			return nil, false
		}
		values[i] = v * o.Scale
	}
	return values, true
}

// Directions lists the objectives' directions in order.
func (s *Spec) Directions() []Direction {
	out := make([]Direction, len(s.Objectives))
	for i, o := range s.Objectives {
		out[i] = o.Direction
	}
	return out
}

// Violations lists the constraints (SLOs) a trial's metrics miss, in words.
func (s *Spec) Violations(metrics map[string]float64) []string {
	var out []string
	if c := s.Workload.Capacity; c != nil && !s.HasMix() {
		// A capacity search that found no level meeting its SLO reports a
		// capacity of 0: the config is infeasible, whatever the objectives say.
		m := CapacityMetric(c.Search)
		if v, ok := metrics[m]; !ok || v <= 0 {
			out = append(out, fmt.Sprintf("no load level up to workload.capacity.max = %g met the capacity SLO (%s = 0)", c.Max, m))
		}
	}
	// Across a mix a capacity metric is the smallest workload's (MixAggregates).
	seen := map[string]bool{}
	for _, w := range s.Workloads {
		if w.Capacity == nil || seen[CapacityMetric(w.Capacity.Search)] {
			continue
		}
		m := CapacityMetric(w.Capacity.Search)
		seen[m] = true
		if v, ok := metrics[m]; !ok || v <= 0 {
			out = append(out, fmt.Sprintf("a workload of the mix met its capacity SLO at no load level (%s = 0; see workload_metrics)", m))
		}
	}
	for _, c := range s.Constraints {
		v, ok := metrics[c.Metric]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s was not measured", c.Metric))
		case c.Max != nil && v > *c.Max:
			out = append(out, fmt.Sprintf("%s = %.4g exceeds the SLO maximum %.4g", c.Metric, v, *c.Max))
		case c.Min != nil && v < *c.Min:
			out = append(out, fmt.Sprintf("%s = %.4g is below the SLO minimum %.4g", c.Metric, v, *c.Min))
		}
	}
	return out
}

// CapacityMetric names the metric holding a capacity search's result:
// capacity_concurrency or capacity_request_rate.
func CapacityMetric(search string) string {
	if search == events.SearchRequestRate {
		return "capacity_request_rate"
	}
	return "capacity_concurrency"
}
