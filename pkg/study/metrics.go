package study

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// knownMetrics are the metrics a trial reports: the load generator's
// (sglang.bench_serving's names), the runner's (startup, GPU usage and
// energy with NVML) and the capacity search's. A spec's objectives and
// constraints name one of them, or one of the spec's own Metrics (those a
// custom benchmark, --backend exec, reports).
var knownMetrics = func() []string {
	names := []string{
		"completed", "failed", "duration", "concurrency",
		"total_input_tokens", "total_output_tokens",
		"request_throughput", "input_throughput", "output_throughput", "total_throughput", "goodput",
		"max_itl_ms", "p95_itl_ms",
		"startup_seconds",
		"gpu_peak_memory_bytes", "gpu_peak_memory_total_bytes", "gpu_mean_utilization", "gpu_max_utilization",
		"gpu_mean_power_watts", "gpu_max_power_watts", "avg_power_watts", "energy_joules", "energy_per_output_token",
		"capacity_concurrency", "capacity_request_rate",
	}
	for _, d := range []string{"ttft", "tpot", "itl", "e2e_latency"} {
		for _, stat := range []string{"mean", "median", "std", "p90", "p99"} {
			names = append(names, stat+"_"+d+"_ms")
		}
	}
	sort.Strings(names)
	return names
}()

// KnownMetrics lists the metric names trials report (sorted).
func KnownMetrics() []string { return slices.Clone(knownMetrics) }

// CheckMetricNames reports an objective or constraint that names a metric no
// trial reports: a typo would otherwise make every trial infeasible (its
// objective "was not measured") after minutes of benchmarking each. The
// error names the key and lists the known metrics.
func (s *Spec) CheckMetricNames() error {
	known := func(m string) bool { return slices.Contains(knownMetrics, m) || slices.Contains(s.Metrics, m) }
	list := func() string {
		extra := ""
		if len(s.Metrics) > 0 {
			extra = "; the spec's metrics: " + strings.Join(s.Metrics, ", ")
		}
		return "known: " + strings.Join(knownMetrics, ", ") + extra +
			" (a custom benchmark's own metrics go in the spec's metrics: list)"
	}
	for i, o := range s.Objectives {
		if !known(o.Metric) {
			return fmt.Errorf("objectives[%d].metric: unknown metric %q%s (%s)", i, o.Metric, suggestMetric(o.Metric), list())
		}
	}
	for i, c := range s.Constraints {
		if !known(c.Metric) {
			return fmt.Errorf("constraints[%d].metric: unknown metric %q%s (%s)", i, c.Metric, suggestMetric(c.Metric), list())
		}
	}
	return nil
}

// suggestMetric is ", did you mean X?" for the known metric closest to an
// unknown one, or "".
func suggestMetric(name string) string {
	best, bestScore := "", 1<<30
	for _, m := range knownMetrics {
		if d := editDistance(name, m); d < bestScore {
			best, bestScore = m, d
		}
	}
	if bestScore <= 3 {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
