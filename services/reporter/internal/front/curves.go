package front

import (
	"maps"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Per-GPU and capacity metrics (issue 12): copied into front members and
// printed on the console when a trial reports them.
var capacityMetrics = []string{
	"gpus", "output_throughput_per_gpu",
	"capacity_concurrency", "capacity_request_rate", "capacity_output_throughput",
	"capacity_output_throughput_per_gpu", "capacity_goodput",
}

// curveOf is a front member's curve from its load points, in load order.
func curveOf(points []events.LoadPoint) []CurvePoint {
	if len(points) == 0 {
		return nil
	}
	out := make([]CurvePoint, 0, len(points))
	for _, p := range points {
		get := func(k string) *float64 {
			if v, ok := p.Metrics[k]; ok {
				return &v
			}
			return nil
		}
		out = append(out, CurvePoint{
			Level: p.Level(), MeanTTFTMs: get("mean_ttft_ms"), P99TTFTMs: get("p99_ttft_ms"),
			MeanTPOTMs: get("mean_tpot_ms"), P99TPOTMs: get("p99_tpot_ms"), OutputThroughput: get("output_throughput"),
			SLOMet: p.SLOMet, Error: p.Error,
		})
	}
	// Repeated levels are one point each already; a capacity search measures
	// levels out of order (grow, then bisect): draw them by load.
	sortCurve(out)
	return out
}

func sortCurve(c []CurvePoint) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j].Level < c[j-1].Level; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// capacityOf is a trial's capacity under the spec's capacity search (nil
// without one, or when the trial did not report it).
func capacityOf(spec *study.Spec, metrics map[string]float64) *CapacityInfo {
	c := spec.Workload.Capacity
	if spec.HasMix() {
		c = nil
		for _, w := range spec.Workloads {
			if w.Capacity != nil {
				c = w.Capacity
				break
			}
		}
	}
	if c == nil {
		return nil
	}
	level, ok := metrics[study.CapacityMetric(c.Search)]
	if !ok {
		return nil
	}
	get := func(k string) *float64 {
		if v, ok := metrics[k]; ok {
			return &v
		}
		return nil
	}
	return &CapacityInfo{
		Search: c.Search, Level: level,
		OutputThroughput:       get("capacity_output_throughput"),
		OutputThroughputPerGPU: get("capacity_output_throughput_per_gpu"),
		Goodput:                get("capacity_goodput"),
		GPUs:                   int(metrics["gpus"]),
	}
}

// curvesInfo is how the front's curves are drawn: the load axis of the
// study's ladder or capacity search and its SLO lines; nil when the study
// measures one level.
func curvesInfo(spec *study.Spec) *CurvesInfo {
	var axis string
	slo := map[string]float64{}
	for _, w := range spec.RunWorkloads() {
		switch {
		case w.Capacity != nil:
			axis = "max_concurrency"
			if w.Capacity.Search == events.SearchRequestRate {
				axis = "request_rate"
			}
			maps.Copy(slo, w.Capacity.SLO)
		case w.Load != nil && axis == "":
			axis = "max_concurrency"
			if len(w.Load.RequestRates) > 0 {
				axis = "request_rate"
			}
		}
	}
	if axis == "" {
		return nil
	}
	for _, c := range spec.Constraints {
		if c.Max != nil && study.IsLatencyMetric(c.Metric) {
			if cur, ok := slo[c.Metric]; !ok || *c.Max < cur {
				slo[c.Metric] = *c.Max
			}
		}
	}
	if len(slo) == 0 {
		slo = nil
	}
	return &CurvesInfo{Axis: axis, SLO: slo}
}
