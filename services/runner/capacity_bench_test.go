package runner

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// The capacity benchmark's stand-in (internal/fakeserver, its own process):
// TTFT = 50 ms + 4 ms per generation request in flight, each inter-token
// gap 10 ms + 0.25 ms per request in flight. In a closed loop at c streams
// every request arrives with c in flight, so p99 TTFT <= 500 ms holds up to
// c = 112 and p99 TPOT <= 30.6 ms up to c = 82: the true capacity under
// both is 82.
const (
	capTTFT, capTTFTPer = 50 * time.Millisecond, 4 * time.Millisecond
	capITL, capITLPer   = 10 * time.Millisecond, 250 * time.Microsecond
	capSLOTTFT          = 500.0
	capSLOTPOT          = 30.6
)

func capTrueConcurrency() float64 {
	ttft := math.Floor((capSLOTTFT - ms(capTTFT)) / ms(capTTFTPer))
	tpot := math.Floor((capSLOTPOT - ms(capITL)) / ms(capITLPer))
	return min(ttft, tpot)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func capWorkload(seed int64) events.Workload {
	return events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 100, RandomInputLen: 256,
		RandomOutputLen: 32, RandomRangeRatio: 1, WarmupRequests: 4, Seed: seed, IgnoreEOS: true, VocabSize: 32000}
}

// BenchmarkCapacitySearch runs `sgtune bench --capacity`'s search (the
// runner's own, loadgen.Measure) against the stand-in above: a concurrency
// search up to 256 under p99 TTFT <= 500 ms and p99 TPOT <= 30.6 ms (true
// capacity 82, from the stand-in's formula), and a request-rate search up
// to 200 req/s under p99 TTFT <= 500 ms, whose true capacity has no closed
// form and is measured by a dense sweep of long levels
// (SGTUNE_CAPACITY_SWEEP=1; otherwise the rate search is reported without
// one). Seeds 1..SGTUNE_CAPACITY_SEEDS (default 3); it reports medians over
// seeds and asserts nothing.
func BenchmarkCapacitySearch(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes of load")
	}
	seeds := 3
	if n, err := strconv.Atoi(os.Getenv("SGTUNE_CAPACITY_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	srv := launchCapacityStandIn(b)
	b.Logf("load average at start: %s", loadAverage())
	truth := capTrueConcurrency()
	b.Run("concurrency", func(b *testing.B) {
		c := &events.CapacitySearch{Search: events.SearchConcurrency, Max: 256,
			SLO: map[string]float64{"p99_ttft_ms": capSLOTTFT, "p99_tpot_ms": capSLOTPOT}}
		reportCapacity(b, srv, c, "capacity_concurrency", truth, seeds)
	})
	rateTruth := 0.0
	if os.Getenv("SGTUNE_CAPACITY_SWEEP") == "1" {
		rateTruth = sweepRateCapacity(b, srv)
	}
	b.Run("request_rate", func(b *testing.B) {
		c := &events.CapacitySearch{Search: events.SearchRequestRate, Max: 200,
			SLO: map[string]float64{"p99_ttft_ms": capSLOTTFT}}
		reportCapacity(b, srv, c, "capacity_request_rate", rateTruth, seeds)
	})
	b.Logf("load average at end: %s", loadAverage())
}

func reportCapacity(b *testing.B, srv *sglang.Server, c *events.CapacitySearch, metric string, truth float64, seeds int) {
	var found, levels, errs, secs []float64
	for seed := 1; seed <= seeds; seed++ {
		w := capWorkload(int64(seed))
		w.Capacity = c
		t0 := time.Now()
		out, err := loadgen.Measure(context.Background(), loadgen.Options{BaseURL: srv.URL(), Workload: w, Timeout: 20 * time.Minute})
		if err != nil {
			b.Fatalf("seed %d: %v", seed, err)
		}
		got := out.Metrics[metric]
		found = append(found, got)
		levels = append(levels, float64(len(out.LoadPoints)))
		secs = append(secs, time.Since(t0).Seconds())
		var trail []string
		for _, p := range out.LoadPoints {
			trail = append(trail, fmt.Sprintf("%g:%v(%.0f/%.1f ms)", p.Level(), *p.SLOMet, p.Metrics["p99_ttft_ms"], p.Metrics["p99_tpot_ms"]))
		}
		if truth > 0 {
			errs = append(errs, 100*(got-truth)/truth)
		}
		b.Logf("seed %d: %s = %g in %d levels (%.0f s): %v", seed, metric, got, len(out.LoadPoints), secs[len(secs)-1], trail)
	}
	med := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return loadgen.Percentile(xs, 50)
	}
	b.ReportMetric(med(found), "capacity")
	b.ReportMetric(med(levels), "levels")
	errCell := "–"
	if truth > 0 {
		b.ReportMetric(med(errs), "err_%")
		errCell = fmt.Sprintf("%+.1f %% (%+.1f … %+.1f)", med(errs), slices.Min(errs), slices.Max(errs))
	}
	b.Logf("| %s | %g | %d | %g (%g … %g) | %s | %g (max %g) | %.0f |", c.Search, truth, seeds, med(found), slices.Min(found),
		slices.Max(found), errCell, med(levels), slices.Max(levels), med(secs))
}

// sweepRateCapacity measures the stand-in's true rate capacity: long levels
// (1,200 requests each, the first 200 not measured) every 5 req/s, the
// largest rate whose p99 TTFT meets the bound, interpolated to the crossing.
func sweepRateCapacity(b *testing.B, srv *sglang.Server) float64 {
	prevRate, prevP99 := 0.0, 0.0
	for rate := 30.0; rate <= 120; rate += 5 {
		w := capWorkload(100 + int64(rate*10))
		w.NumPrompts, w.RequestRate = 1200, rate
		res, err := loadgen.Run(context.Background(), loadgen.Options{BaseURL: srv.URL(), Workload: w, Timeout: 10 * time.Minute})
		if err != nil {
			b.Fatalf("sweep at %g req/s: %v", rate, err)
		}
		p99 := steadyP99TTFT(res.Requests, 200)
		b.Logf("sweep: %g req/s: p99 TTFT %.1f ms", rate, p99)
		if p99 > capSLOTTFT {
			if prevRate == 0 {
				return rate
			}
			return prevRate + (rate-prevRate)*(capSLOTTFT-prevP99)/(p99-prevP99)
		}
		prevRate, prevP99 = rate, p99
	}
	return prevRate
}

func steadyP99TTFT(rs []loadgen.RequestResult, skip int) float64 {
	var xs []float64
	for _, r := range rs[min(skip, len(rs)):] {
		if r.OK {
			xs = append(xs, ms(r.TTFT))
		}
	}
	slices.Sort(xs)
	return loadgen.Percentile(xs, 99)
}

func launchCapacityStandIn(tb testing.TB) *sglang.Server {
	tb.Helper()
	return launchFake(tb, map[string]string{
		"SGTUNE_FAKE_TTFT": capTTFT.String(), "SGTUNE_FAKE_TTFT_PER_STREAM": capTTFTPer.String(),
		"SGTUNE_FAKE_ITL": capITL.String(), "SGTUNE_FAKE_ITL_PER_STREAM": capITLPer.String(),
	})
}
