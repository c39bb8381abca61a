package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner/internal/capacity"
)

// Sizing a capacity level (see capacity.Requests for the count):
//   - closed loop at concurrency c: c more requests are sent first and not
//     measured, so the measured ones start in steady state, not in the first
//     wave that reaches an idle server all at once;
//   - open loop at rate λ: after the first level, the requests arriving
//     within rateRampE2Es mean end-to-end latencies (of the level before)
//     are not measured, and the level lasts at least rateLevelE2Es of
//     them, so its queue has time to build. Near capacity a queue settles
//     slowly: with 1 and 3 latencies the rate search over-estimated a
//     stand-in's capacity by 11 % (median of 3 seeds; levels too short to
//     see their p99 grow), with 2 and 8 by 8 %, at twice the search time
//     (BenchmarkCapacitySearch, docs/benchmarks.md).
const (
	rateLevelE2Es = 8
	rateRampE2Es  = 2
)

// levelMeasure is one level of a capacity search, its repeats pooled.
type levelMeasure struct {
	results  []RequestResult
	duration time.Duration
	repeats  int
	point    int // index in Outcome.LoadPoints
	metrics  map[string]float64
	units    map[string]string
}

func measureCapacity(ctx context.Context, o Options) (*Outcome, error) {
	w := o.Workload
	c := w.Capacity
	rate := c.Search == events.SearchRequestRate
	slo := capacity.SLO(c.SLO)
	lo := c.Min
	if lo == 0 {
		lo = 1
	}
	search, err := capacity.New(capacity.Config{Min: lo, Max: c.Max, Integer: !rate, MaxLevels: c.MaxLevels})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWorkload, err)
	}
	s, err := newSession(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rng := rand.New(rand.NewPCG(uint64(w.Seed), 0x8a1d5c3e))
	goodSLO := perRequestSLO(c.SLO)
	out := &Outcome{}
	levels := map[float64]*levelMeasure{}
	var lastE2E time.Duration
	for salt := uint64(0); ; salt++ {
		step, done := search.Next()
		if done {
			break
		}
		lv := step.Level
		wl := atLevel(w, lv, rate)
		var ramp int
		wl.NumPrompts, ramp = levelSize(c, lv, w.NumPrompts, rate, lastE2E)
		if salt > 0 {
			s.flushCache()
		}
		res, err := s.level(wl, salt, ramp)
		if err != nil && !errors.Is(err, ErrAllFailed) {
			p := loadPoint(lv, rate, res)
			p.Error = err.Error()
			out.LoadPoints = append(out.LoadPoints, p)
			return out, err // timeout, cancelled, a stalled stream (the server hung)
		}
		out.Duration += res.Duration
		m := levels[lv]
		if m == nil || !step.Repeat {
			m = &levelMeasure{point: len(out.LoadPoints)}
			out.LoadPoints = append(out.LoadPoints, events.LoadPoint{})
			levels[lv] = m
		}
		m.results = append(m.results, res.Requests...)
		m.duration += res.Duration
		m.repeats++
		m.metrics, m.units = Aggregate(m.results, m.duration, goodSLO)
		j := judge(slo, m, rng)
		search.Observe(lv, j)
		met := j.Margin <= 1 && m.metrics["failed"] == 0
		p := loadPoint(lv, rate, &Result{Metrics: m.metrics})
		p.SLOMet, p.Repeats = &met, m.repeats
		if m.metrics["failed"] > 0 {
			p.Error = fmt.Sprintf("%.0f of %d requests failed (first error: %s)", m.metrics["failed"], len(m.results), (&Result{Requests: m.results}).FirstError())
		}
		out.LoadPoints[m.point] = p
		if o.OnLevel != nil {
			o.OnLevel(p)
		}
		if e2e := m.metrics["mean_e2e_latency_ms"]; e2e > 0 {
			lastE2E = time.Duration(e2e * float64(time.Millisecond))
		}
	}
	finishCapacity(out, c, search, levels, rate)
	return out, nil
}

// levelSize is how many requests a capacity level measures and how many it
// sends first without measuring them (see rateLevelE2Es).
func levelSize(c *events.CapacitySearch, level float64, base int, rate bool, lastE2E time.Duration) (n, ramp int) {
	n = c.RequestsPerLevel
	if n == 0 {
		n = capacity.Requests(capacity.SLO(c.SLO), level, base)
	}
	switch {
	case !rate:
		ramp = int(level)
	case lastE2E > 0:
		ramp = int(math.Ceil(level * rateRampE2Es * lastE2E.Seconds()))
		if c.RequestsPerLevel == 0 {
			n = max(n, int(math.Ceil(level*rateLevelE2Es*lastE2E.Seconds())))
		}
	}
	return n, ramp
}

// judge gives the verdict on a level's pooled measurements.
func judge(slo capacity.SLO, m *levelMeasure, rng *rand.Rand) capacity.Judgement {
	if m.metrics["failed"] > 0 {
		// A request that failed met no bound: the level does not sustain the load.
		return capacity.Judgement{Verdict: capacity.Fail, Margin: math.Inf(1), Worst: "failed requests"}
	}
	return capacity.Judge(slo, m.metrics, resampler(m.results, slo), rng, capacity.DefaultBootstrap)
}

// finishCapacity sets the outcome's headline from the capacity level (or,
// when no level met the SLO, from the lowest level measured, with capacity 0).
func finishCapacity(out *Outcome, c *events.CapacitySearch, search *capacity.Search, levels map[float64]*levelMeasure, rate bool) {
	name := study.CapacityMetric(c.Search)
	unit := UnitRequests
	if rate {
		unit = UnitReqPerS
	}
	level, ok := search.Capacity()
	if !ok {
		lowest := math.Inf(1)
		for lv := range levels {
			lowest = min(lowest, lv)
		}
		m := levels[lowest]
		if m == nil {
			return
		}
		mg, worst := capacity.Margin(capacity.SLO(c.SLO), m.metrics)
		out.Reason = fmt.Sprintf("no load level met the capacity SLO: at %s %v, %s", levelName(rate), lowest, missed(c.SLO, m.metrics, worst, mg))
		level = lowest
	}
	m := levels[level]
	out.Headline = &Result{Requests: m.results, Duration: m.duration, Metrics: m.metrics, Units: m.units}
	out.Metrics = make(map[string]float64, len(m.metrics)+4)
	out.Units = make(map[string]string, len(m.units)+4)
	for k, v := range m.metrics {
		out.Metrics[k], out.Units[k] = v, m.units[k]
	}
	put := func(k string, v float64, u string) { out.Metrics[k], out.Units[k] = v, u }
	if !ok {
		level = 0
	}
	put(name, level, unit)
	put("capacity_levels", float64(search.Levels()), "levels")
	if ok {
		put("capacity_output_throughput", m.metrics["output_throughput"], UnitTokPerS)
		put("capacity_goodput", m.metrics["goodput"], UnitReqPerS)
	} else {
		put("capacity_output_throughput", 0, UnitTokPerS)
		put("capacity_goodput", 0, UnitReqPerS)
	}
}

func missed(slo map[string]float64, metrics map[string]float64, worst string, margin float64) string {
	if worst == "failed requests" || metrics["failed"] > 0 {
		return fmt.Sprintf("%.0f requests failed", metrics["failed"])
	}
	if math.IsInf(margin, 1) {
		return worst + " was not measured"
	}
	return fmt.Sprintf("%s = %.4g ms > %.4g ms", worst, metrics[worst], slo[worst])
}

// perRequestSLO turns the capacity SLO's bounds into the per-request
// thresholds of goodput (as bench_serving's --goodput: TTFT, TPOT and
// end-to-end latency; a bound on ITL has no per-request form): the tightest
// bound on each.
func perRequestSLO(slo map[string]float64) SLO {
	var g SLO
	tighter := func(cur *time.Duration, ms float64) {
		d := msDur(ms)
		if *cur == 0 || d < *cur {
			*cur = d
		}
	}
	for k, v := range slo {
		switch {
		case strings.HasSuffix(k, "_ttft_ms"):
			tighter(&g.TTFT, v)
		case strings.HasSuffix(k, "_tpot_ms"):
			tighter(&g.TPOT, v)
		case strings.HasSuffix(k, "_e2e_latency_ms"):
			tighter(&g.E2E, v)
		}
	}
	return g
}

// resampler returns the bootstrap of a level: the SLO's metrics over a
// resample (with replacement) of its requests.
func resampler(rs []RequestResult, slo capacity.SLO) func(*rand.Rand) map[string]float64 {
	buf := make([]RequestResult, len(rs))
	return func(r *rand.Rand) map[string]float64 {
		for i := range buf {
			buf[i] = rs[r.IntN(len(rs))]
		}
		return sloMetrics(slo, buf)
	}
}

// sloMetrics computes only the metrics an SLO names, as Aggregate would.
func sloMetrics(slo capacity.SLO, rs []RequestResult) map[string]float64 {
	values := map[string][]float64{}
	dist := func(d string) []float64 {
		if xs, ok := values[d]; ok {
			return xs
		}
		var xs []float64
		for i := range rs {
			r := &rs[i]
			if !r.OK {
				continue
			}
			switch d {
			case "ttft":
				xs = append(xs, ms(r.TTFT))
			case "e2e_latency":
				xs = append(xs, ms(r.E2E))
			case "tpot":
				if t, ok := r.TPOT(); ok {
					xs = append(xs, ms(t))
				}
			case "itl":
				for _, g := range r.ITL {
					xs = append(xs, ms(g))
				}
			}
		}
		slices.Sort(xs)
		values[d] = xs
		return xs
	}
	out := make(map[string]float64, len(slo))
	for k := range slo {
		stat, rest, _ := strings.Cut(k, "_")
		xs := dist(strings.TrimSuffix(rest, "_ms"))
		switch stat {
		case "mean":
			out[k] = Mean(xs)
		case "median":
			out[k] = Percentile(xs, 50)
		default:
			var p float64
			if _, err := fmt.Sscanf(stat, "p%g", &p); err == nil {
				out[k] = Percentile(xs, p)
			}
		}
	}
	return out
}
