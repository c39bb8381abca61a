package study

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// MetricGPUs is the number of GPUs the server was launched on (tp × pp × dp,
// or tp × pp with DP attention), a metric of every result that has metrics.
const MetricGPUs = "gpus"

// PerGPUSuffix turns a per-server figure into its per-GPU twin:
// output_throughput -> output_throughput_per_gpu.
const PerGPUSuffix = "_per_gpu"

// perServerRates are the rates results carry (the capacity ones when the
// workload has a capacity search): each has a per-GPU twin. Any other name
// IsPerServerRate accepts is known as well, so a new throughput metric gets
// its twin without being listed here.
var perServerRates = []string{
	"request_throughput", "input_throughput", "output_throughput", "total_throughput", "goodput",
	"capacity_concurrency", "capacity_request_rate", "capacity_output_throughput", "capacity_goodput",
}

// knownMetrics are the metrics a trial reports: the load generator's
// (sglang.bench_serving's names), the runner's (startup, GPUs, GPU usage and
// energy with NVML), the capacity search's and the per-GPU twin of every
// rate. A spec's objectives and constraints name one of them (or any
// latency statistic latencyMetric matches), or one of the spec's own
// Metrics (those a custom benchmark, --backend exec, reports).
var knownMetrics = func() []string {
	names := []string{
		"completed", "failed", "duration", "concurrency",
		"total_input_tokens", "total_output_tokens",
		"max_itl_ms", "p95_itl_ms",
		"startup_seconds", MetricGPUs,
		"cache_hit_rate", "capacity_levels", // the load generator's: prefix-cache hits, levels of a capacity search
		"gpu_peak_memory_bytes", "gpu_peak_memory_total_bytes", "gpu_mean_utilization", "gpu_max_utilization",
		"gpu_mean_power_watts", "gpu_max_power_watts", "avg_power_watts", "energy_joules", "energy_per_output_token",
	}
	for _, r := range perServerRates {
		names = append(names, r, r+PerGPUSuffix)
	}
	for _, d := range []string{"ttft", "tpot", "itl", "e2e_latency"} {
		for _, stat := range []string{"mean", "median", "std", "p90", "p99"} {
			names = append(names, stat+"_"+d+"_ms")
		}
	}
	sort.Strings(names)
	return names
}()

// latencyMetric matches bench_serving's latency statistics beyond the listed
// ones: mean, median, std, max or any percentile of ttft, tpot, itl and
// e2e_latency, in ms (p95_ttft_ms, p99.9_itl_ms, ...).
var latencyMetric = regexp.MustCompile(`^(mean|median|std|max|p[0-9]{1,2}(\.[0-9]+)?)_(ttft|tpot|itl|e2e_latency)_ms$`)

// KnownMetrics lists the metric names trials report (sorted).
func KnownMetrics() []string { return slices.Clone(knownMetrics) }

// IsPerServerRate reports whether metric is a rate that adds up across
// replicas (throughputs, goodputs, capacities): those get a per-GPU twin, so
// that one 8-GPU server and eight 1-GPU replicas compare fairly.
func IsPerServerRate(metric string) bool {
	if strings.HasSuffix(metric, PerGPUSuffix) {
		return false
	}
	return strings.HasSuffix(metric, "_throughput") || metric == "goodput" || strings.HasSuffix(metric, "_goodput") ||
		metric == "capacity_concurrency" || metric == "capacity_request_rate"
}

// IsKnownMetric reports whether a trial can report metric: one of
// KnownMetrics, any bench_serving latency statistic, any per-server rate or
// the per-GPU twin of one.
func IsKnownMetric(metric string) bool {
	if slices.Contains(knownMetrics, metric) || latencyMetric.MatchString(metric) || IsPerServerRate(metric) {
		return true
	}
	base, ok := strings.CutSuffix(metric, PerGPUSuffix)
	return ok && IsPerServerRate(base)
}

// CheckMetricNames reports an objective or constraint that names a metric no
// trial reports: a typo would otherwise make every trial infeasible (its
// objective "was not measured") after minutes of benchmarking each. The
// error names the key and lists the known metrics.
func (s *Spec) CheckMetricNames() error {
	known := func(m string) bool { return IsKnownMetric(m) || slices.Contains(s.Metrics, m) }
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

// AddPerGPU adds the per-GPU figures to one result's (or one load level's)
// metrics: MetricGPUs = gpus, and for every per-server rate (IsPerServerRate)
// its twin <rate>_per_gpu = rate / gpus, with "<unit>/GPU" as its unit.
// This is the one place per-GPU figures are derived, so a new throughput
// metric gets its twin without more code. units may be nil; gpus < 1 adds
// nothing.
func AddPerGPU(metrics map[string]float64, units map[string]string, gpus int) {
	if gpus < 1 || metrics == nil {
		return
	}
	names := make([]string, 0, len(metrics))
	for k := range metrics {
		names = append(names, k)
	}
	for _, k := range names {
		if !IsPerServerRate(k) {
			continue
		}
		metrics[k+PerGPUSuffix] = metrics[k] / float64(gpus)
		if units != nil {
			if u, ok := units[k]; ok && u != "" {
				units[k+PerGPUSuffix] = u + "/GPU"
			}
		}
	}
	metrics[MetricGPUs] = float64(gpus)
	if units != nil {
		units[MetricGPUs] = "GPU"
	}
}
