package loadgen

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0..100) of xs like numpy's default
// ("linear"): the value at rank p/100*(n-1), interpolated between neighbours.
// xs must be sorted ascending; it returns 0 for an empty slice.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	if lo < 0 {
		lo = 0
	}
	if hi >= n {
		hi = n - 1
	}
	frac := rank - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// Mean is the arithmetic mean (0 for none).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Std is the population standard deviation, numpy's default (ddof=0).
func Std(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := Mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)))
}

// RequestResult is the measurement of one request.
type RequestResult struct {
	// OK is true when the request completed; Err says why not.
	OK  bool
	Err string
	// InputTokens is the prompt length (the server's count when it reports one);
	// OutputTokens the generated tokens (the server's count).
	InputTokens  int
	OutputTokens int
	// TTFT is send to the first chunk with new tokens; E2E send to the end of the stream.
	TTFT time.Duration
	E2E  time.Duration
	// ITL holds the gaps between content chunks, each spread evenly over the
	// chunk's new tokens.
	ITL []time.Duration
	// Start is when the request was sent (handed to the HTTP client),
	// GotConn when it had a connection, Sent when its last byte was written.
	Start, GotConn, Sent time.Time
	// RID is the request id sent to the server (Options.RequestIDPrefix), if any.
	RID string
	// CachedTokens is the server's count of prompt tokens served from its
	// prefix cache (meta_info.cached_tokens), when CacheReported.
	CachedTokens  int
	CacheReported bool
	// NewConn is true when the request had to open a connection (on the clock).
	NewConn bool
}

// TPOT is (E2E - TTFT) / (output tokens - 1), defined for more than one token.
func (r *RequestResult) TPOT() (time.Duration, bool) {
	if r.OutputTokens <= 1 {
		return 0, false
	}
	return (r.E2E - r.TTFT) / time.Duration(r.OutputTokens-1), true
}

// SLO targets of goodput; zero fields are not checked.
type SLO struct {
	TTFT, TPOT, E2E time.Duration
}

func (s SLO) set() bool { return s.TTFT > 0 || s.TPOT > 0 || s.E2E > 0 }

func (s SLO) met(r *RequestResult) bool {
	if s.TTFT > 0 && r.TTFT > s.TTFT {
		return false
	}
	if s.E2E > 0 && r.E2E > s.E2E {
		return false
	}
	if tpot, ok := r.TPOT(); ok && s.TPOT > 0 && tpot > s.TPOT {
		return false
	}
	return true
}

// Units of the aggregate metrics.
const (
	UnitMs       = "ms"
	UnitReqPerS  = "req/s"
	UnitTokPerS  = "tok/s"
	UnitSeconds  = "s"
	UnitRequests = "req"
	UnitTokens   = "tok"
	UnitRatio    = "ratio"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Aggregate computes bench_serving's aggregates from the measured requests and
// the benchmark's duration: latencies in milliseconds (mean/median/std/p90/p99
// of ttft, tpot and e2e_latency; itl adds p95 and max, pooled over every gap),
// throughputs per second, concurrency = sum of E2E / duration, and goodput
// (completed requests meeting every SLO per second) when an SLO is set.
func Aggregate(results []RequestResult, duration time.Duration, slo SLO) (map[string]float64, map[string]string) {
	m := map[string]float64{}
	u := map[string]string{}
	put := func(name string, v float64, unit string) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		m[name], u[name] = v, unit
	}
	var ttft, tpot, e2e, itl []float64
	var inTok, outTok, good int
	var cached, cachedOf int // prompt tokens served from the prefix cache, of prompt tokens that reported it
	var completed, failed int
	var sumE2E time.Duration
	for i := range results {
		r := &results[i]
		if !r.OK {
			failed++
			continue
		}
		completed++
		inTok += r.InputTokens
		outTok += r.OutputTokens
		if r.CacheReported {
			cached += r.CachedTokens
			cachedOf += r.InputTokens
		}
		ttft = append(ttft, ms(r.TTFT))
		e2e = append(e2e, ms(r.E2E))
		sumE2E += r.E2E
		if t, ok := r.TPOT(); ok {
			tpot = append(tpot, ms(t))
		}
		for _, g := range r.ITL {
			itl = append(itl, ms(g))
		}
		if slo.set() && slo.met(r) {
			good++
		}
	}
	secs := duration.Seconds()
	rate := func(x float64) float64 {
		if secs <= 0 {
			return 0
		}
		return x / secs
	}
	put("completed", float64(completed), UnitRequests)
	put("failed", float64(failed), UnitRequests)
	put("duration", secs, UnitSeconds)
	put("total_input_tokens", float64(inTok), UnitTokens)
	put("total_output_tokens", float64(outTok), UnitTokens)
	put("request_throughput", rate(float64(completed)), UnitReqPerS)
	put("input_throughput", rate(float64(inTok)), UnitTokPerS)
	put("output_throughput", rate(float64(outTok)), UnitTokPerS)
	put("total_throughput", rate(float64(inTok+outTok)), UnitTokPerS)
	put("concurrency", rate(sumE2E.Seconds()), UnitRequests)
	if slo.set() {
		put("goodput", rate(float64(good)), UnitReqPerS)
	}
	if cachedOf > 0 {
		// SGLang reports meta_info.cached_tokens per request: the share of
		// prompt tokens its radix cache served.
		put("cache_hit_rate", float64(cached)/float64(cachedOf), UnitRatio)
	}
	dist := func(name string, xs []float64) {
		slices.Sort(xs)
		put("mean_"+name+"_ms", Mean(xs), UnitMs)
		put("median_"+name+"_ms", Percentile(xs, 50), UnitMs)
		put("std_"+name+"_ms", Std(xs), UnitMs)
		put("p90_"+name+"_ms", Percentile(xs, 90), UnitMs)
		put("p95_"+name+"_ms", Percentile(xs, 95), UnitMs)
		put("p99_"+name+"_ms", Percentile(xs, 99), UnitMs)
	}
	dist("ttft", ttft)
	dist("tpot", tpot)
	dist("itl", itl)
	dist("e2e_latency", e2e)
	maxITL := 0.0
	if len(itl) > 0 {
		maxITL = itl[len(itl)-1]
	}
	put("max_itl_ms", maxITL, UnitMs)
	return m, u
}
