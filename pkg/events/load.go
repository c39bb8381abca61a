package events

import (
	"encoding/json"
	"fmt"
)

// Capacity search dimensions (CapacitySearch.Search).
const (
	SearchConcurrency = "concurrency"
	SearchRequestRate = "request_rate"
)

// LoadLadder is a list of load levels measured one after the other against
// the same server: closed-loop concurrencies or open-loop Poisson rates (one
// of the two). Each level gets its own warm-up that opens every connection;
// the ladder stops at the first level that fails (errors, a stalled stream).
type LoadLadder struct {
	// Concurrency lists max-concurrency levels, strictly increasing.
	Concurrency []int `json:"concurrency,omitempty" yaml:"concurrency"`
	// RequestRates lists Poisson arrival rates in requests/s, strictly increasing.
	RequestRates []float64 `json:"request_rates,omitempty" yaml:"request_rates"`
	// Headline is the level whose metrics become the trial's own (mean_ttft_ms,
	// output_throughput, ...); 0 means Workload.MaxConcurrency (or
	// Workload.RequestRate for a rate ladder), which must then be a level.
	Headline float64 `json:"headline,omitempty" yaml:"headline"`
}

// CapacitySearch finds, on one server, the largest concurrency or Poisson
// request rate whose measured latencies meet every SLO: levels grow, then
// bisect, and a level whose verdict is within noise of a bound is repeated.
type CapacitySearch struct {
	// Search is SearchConcurrency or SearchRequestRate.
	Search string `json:"search" yaml:"search"`
	// Max bounds the search (at least 1); Min is the lowest level tried
	// (default 1).
	Max float64 `json:"max" yaml:"max"`
	Min float64 `json:"min,omitempty" yaml:"min"`
	// SLO maps latency metrics (p99_ttft_ms, p99_tpot_ms, p99_itl_ms,
	// p99_e2e_latency_ms, or another mean/median/p90/p95/p99 of ttft, tpot,
	// itl, e2e_latency) to their upper bound in milliseconds.
	SLO map[string]float64 `json:"slo" yaml:"slo"`
	// MaxLevels caps the levels measured, repeats included (default 8).
	MaxLevels int `json:"max_levels,omitempty" yaml:"max_levels"`
	// RequestsPerLevel overrides the measured requests of each level (default:
	// enough for the SLO's percentiles, see the load generator's docs).
	RequestsPerLevel int `json:"requests_per_level,omitempty" yaml:"requests_per_level"`
}

// LoadPoint is one measured load level. In JSON it is one flat object, like
// a bench_serving record: "max_concurrency" or "request_rate", then every
// metric under its bench_serving name, plus "slo_met" (capacity search),
// "repeats" and "error" where they apply.
type LoadPoint struct {
	// MaxConcurrency (closed loop) or RequestRate (open loop) is the level.
	MaxConcurrency int
	RequestRate    float64
	// Metrics are the level's aggregates (mean_ttft_ms, output_throughput, ...).
	Metrics map[string]float64
	// SLOMet is whether the level met the capacity search's SLO (nil: no SLO).
	SLOMet *bool
	// Repeats counts how often the level was measured (its samples pooled);
	// 0 or 1 means once.
	Repeats int
	// Error says why the level failed (the ladder stopped there).
	Error string
}

// loadPointKeys are the keys of a LoadPoint that are not metrics.
var loadPointKeys = map[string]bool{"max_concurrency": true, "request_rate": true, "slo_met": true, "repeats": true, "error": true}

// MarshalJSON writes the flat object.
func (p LoadPoint) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(p.Metrics)+4)
	for k, v := range p.Metrics {
		if !loadPointKeys[k] {
			out[k] = v
		}
	}
	if p.MaxConcurrency > 0 {
		out["max_concurrency"] = p.MaxConcurrency
	}
	if p.RequestRate > 0 {
		out["request_rate"] = p.RequestRate
	}
	if p.SLOMet != nil {
		out["slo_met"] = *p.SLOMet
	}
	if p.Repeats > 1 {
		out["repeats"] = p.Repeats
	}
	if p.Error != "" {
		out["error"] = p.Error
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the flat object; every number that is not a level
// field is a metric.
func (p *LoadPoint) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*p = LoadPoint{}
	for k, v := range raw {
		var err error
		switch k {
		case "max_concurrency":
			err = json.Unmarshal(v, &p.MaxConcurrency)
		case "request_rate":
			err = json.Unmarshal(v, &p.RequestRate)
		case "slo_met":
			var b bool
			err = json.Unmarshal(v, &b)
			p.SLOMet = &b
		case "repeats":
			err = json.Unmarshal(v, &p.Repeats)
		case "error":
			err = json.Unmarshal(v, &p.Error)
		default:
			var f float64
			if err = json.Unmarshal(v, &f); err == nil {
				if p.Metrics == nil {
					p.Metrics = map[string]float64{}
				}
				p.Metrics[k] = f
			}
		}
		if err != nil {
			return fmt.Errorf("load point %s: %w", k, err)
		}
	}
	return nil
}

// Level is the point's load: its concurrency, or its request rate.
func (p LoadPoint) Level() float64 {
	if p.MaxConcurrency > 0 {
		return float64(p.MaxConcurrency)
	}
	return p.RequestRate
}
