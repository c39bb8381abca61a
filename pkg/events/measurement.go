package events

// Measurement is what a running trial has measured so far, published as
// progress (PhaseMeasured) while its benchmark runs, so the sampler can stop
// a trial that cannot reach the front (early stopping).
type Measurement struct {
	// Step numbers the trial's measurements, from 1.
	Step int `json:"step"`
	// Fraction is the share of the trial's planned measured requests done
	// (across every workload of a mix), in (0, 1].
	Fraction float64 `json:"fraction"`
	// Requests is how many measured requests completed behind Metrics.
	Requests int `json:"requests"`
	// Metrics estimate the trial's headline metrics from what was measured
	// so far (bench_serving names, as in TrialResult.Metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Lower and Upper are hard bounds on the finished trial's value of some
	// metrics, known from the measurement's structure (the worst workload
	// of a mix so far bounds the mix's worst); metrics not named have none.
	Lower map[string]float64 `json:"lower,omitempty"`
	Upper map[string]float64 `json:"upper,omitempty"`
	// WorkloadMetrics are the finished workloads' metrics of a mix.
	WorkloadMetrics map[string]map[string]float64 `json:"workload_metrics,omitempty"`
	// LoadPoints are the load levels finished so far (ladder or capacity search).
	LoadPoints []LoadPoint `json:"load_points,omitempty"`
}
