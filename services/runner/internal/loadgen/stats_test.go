package loadgen

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestPercentile_like_numpy(t *testing.T) {
	t.Parallel()
	xs := []float64{1, 2, 3, 4}
	tests := []struct {
		p        float64
		expected float64 // numpy.percentile([1,2,3,4], p)
	}{
		{0, 1}, {50, 2.5}, {90, 3.7}, {95, 3.85}, {99, 3.97}, {100, 4},
	}
	for _, tt := range tests {
		if got := Percentile(xs, tt.p); !near(got, tt.expected) {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.expected)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("single value p99 = %v", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty = %v", got)
	}
	if got := Std(xs); !near(got, math.Sqrt(1.25)) {
		t.Errorf("std = %v, want sqrt(1.25) (ddof=0)", got)
	}
}

func gaps(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestAggregate_hand_computed(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	results := []RequestResult{
		{OK: true, InputTokens: 50, OutputTokens: 10, TTFT: 100 * ms, E2E: 1000 * ms, ITL: gaps(9, 100*ms)},
		{OK: true, InputTokens: 150, OutputTokens: 19, TTFT: 200 * ms, E2E: 2000 * ms, ITL: gaps(18, 100*ms)},
		{OK: false, Err: "HTTP 500"},
	}
	m, u := Aggregate(results, 2*time.Second, SLO{TTFT: 150 * ms})
	expected := map[string]float64{
		"completed": 2, "failed": 1, "duration": 2,
		"total_input_tokens": 200, "total_output_tokens": 29,
		"request_throughput": 1, "input_throughput": 100, "output_throughput": 14.5, "total_throughput": 114.5,
		"concurrency": 1.5, "goodput": 0.5,
		"mean_ttft_ms": 150, "median_ttft_ms": 150, "std_ttft_ms": 50, "p90_ttft_ms": 190, "p99_ttft_ms": 199,
		"mean_tpot_ms": 100, "median_tpot_ms": 100, "std_tpot_ms": 0, "p99_tpot_ms": 100,
		"mean_itl_ms": 100, "p95_itl_ms": 100, "max_itl_ms": 100,
		"mean_e2e_latency_ms": 1500, "median_e2e_latency_ms": 1500, "p99_e2e_latency_ms": 1990,
	}
	for k, want := range expected {
		got, ok := m[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if !near(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	for k, want := range map[string]string{"mean_ttft_ms": "ms", "output_throughput": "tok/s", "request_throughput": "req/s", "duration": "s"} {
		if u[k] != want {
			t.Errorf("unit of %s = %q, want %q", k, u[k], want)
		}
	}
	if _, ok := m["cache_hit_rate"]; ok {
		t.Error("cache_hit_rate without a server reporting cached tokens")
	}
	if m2, _ := Aggregate(results, 2*time.Second, SLO{}); m2["goodput"] != 0 {
		t.Error("goodput reported without an SLO")
	} else if _, ok := m2["goodput"]; ok {
		t.Error("goodput present without an SLO")
	}
}

func TestTPOT_needs_two_tokens(t *testing.T) {
	t.Parallel()
	r := RequestResult{OutputTokens: 1, TTFT: time.Second, E2E: time.Second}
	if _, ok := r.TPOT(); ok {
		t.Fatal("TPOT defined for one token")
	}
}

func TestAggregate_cache_hit_rate_over_the_requests_that_report_it(t *testing.T) {
	t.Parallel()
	results := []RequestResult{
		{OK: true, InputTokens: 1000, OutputTokens: 2, CachedTokens: 512, CacheReported: true},
		{OK: true, InputTokens: 600, OutputTokens: 2, CachedTokens: 0, CacheReported: true},
		{OK: true, InputTokens: 400, OutputTokens: 2},                         // not reported
		{OK: false, InputTokens: 900, CachedTokens: 900, CacheReported: true}, // failed: not counted
	}
	m, u := Aggregate(results, time.Second, SLO{})
	if !near(m["cache_hit_rate"], 512.0/1600) || u["cache_hit_rate"] != UnitRatio {
		t.Fatalf("cache_hit_rate = %v %s, want %v", m["cache_hit_rate"], u["cache_hit_rate"], 512.0/1600)
	}
}
