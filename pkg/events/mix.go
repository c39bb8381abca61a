package events

// NamedWorkload is one workload of a mix (the spec's workloads: list): its
// name, its weight in the mix and the workload itself, whose fields sit
// beside name and weight in YAML and JSON.
type NamedWorkload struct {
	// Name keys the workload's metrics in TrialResult.WorkloadMetrics.
	Name string `json:"name" yaml:"name"`
	// Weight is the workload's share of the traffic; the weights of a mix
	// sum to a positive number and are normalised by it.
	Weight   float64 `json:"weight" yaml:"weight"`
	Workload `yaml:",inline"`
}

// Ways a metric is aggregated across the workloads of a mix
// (TrialQueued.MixAggregates).
const (
	// AggregateWeighted is the weighted mean (the mix's weights, normalised).
	AggregateWeighted = "weighted"
	// AggregateMax and AggregateMin take the largest or smallest value of any
	// workload: the worst of a minimised or maximised metric.
	AggregateMax = "max"
	AggregateMin = "min"
	// AggregateSum adds the workloads' values (counts: completed requests,
	// tokens, duration).
	AggregateSum = "sum"
)
