package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Workload is a benchmark in sglang.bench_serving's terms (ignore_eos,
// streaming).
type Workload struct {
	// Dataset is "" or "random" (random token ids: no two prompts share a
	// prefix) or "generated-shared-prefix" (the GSP fields).
	Dataset string
	// NumPrompts is the number of measured requests; 0 means 1000 (random)
	// or every generated prompt; fewer than generated takes the first ones.
	NumPrompts int
	// InputLen and OutputLen are random_input_len and random_output_len.
	InputLen, OutputLen int
	// RangeRatio draws each length uniformly from [max(1, int(L*ratio)), L].
	RangeRatio float64
	// MaxConcurrency caps requests in flight (closed loop); 0 means no cap.
	MaxConcurrency int
	// RequestRate is the Poisson arrival rate in requests/s; 0 or +Inf sends all at once.
	RequestRate float64
	// Seed seeds lengths, token ids, the prompt order and arrival times.
	Seed int64
	// The "generated-shared-prefix" dataset, as bench_serving generates it:
	// GSPNumGroups groups of GSPPromptsPerGroup prompts; a prompt is its
	// group's system prompt of GSPSystemPromptLen tokens followed by its own
	// question of GSPQuestionLen tokens and asks for GSPOutputLen tokens; the
	// prompts are shuffled.
	GSPNumGroups, GSPPromptsPerGroup, GSPSystemPromptLen, GSPQuestionLen, GSPOutputLen int
}

// Datasets Evaluate knows.
const (
	DatasetRandom             = "random"
	DatasetGeneratedSharedPfx = "generated-shared-prefix"
)

// Result is the expected outcome of a benchmark: bench_serving's aggregates
// (latencies in milliseconds, throughputs per second) plus the server's
// derived settings.
type Result struct {
	// Plan is the resolved launch (effective args, KV capacity, graph sizes).
	Plan *Plan
	// StartupSeconds is launch until /health_generate answers 200 (unscaled).
	StartupSeconds float64

	Completed            int
	DurationS            float64
	TotalInputTokens     int
	TotalOutputTokens    int
	RequestThroughput    float64
	InputThroughput      float64
	OutputThroughput     float64
	TotalThroughput      float64
	Concurrency          float64
	MeanTTFTMs           float64
	MedianTTFTMs         float64
	P90TTFTMs            float64
	P99TTFTMs            float64
	MeanTPOTMs           float64
	MedianTPOTMs         float64
	P99TPOTMs            float64
	MeanITLMs            float64
	MedianITLMs          float64
	P95ITLMs             float64
	P99ITLMs             float64
	MeanE2EMs            float64
	MedianE2EMs          float64
	P90E2EMs             float64
	P99E2EMs             float64
	Retractions          int
	PeakPrefillTokens    int
	MaxRunningBatch      int
	MeanRunningBatchSize float64
	// CachedTokens is the prompt tokens served from the prefix cache;
	// CacheHitRate is CachedTokens / TotalInputTokens.
	CachedTokens int
	CacheHitRate float64
	// Requests are the measured requests' timelines, in the order sent
	// (what a load generator sees of each: early stopping's benchmark
	// rebuilds a partial measurement from them).
	Requests []RequestTiming
}

// RequestTiming is one request's timeline in seconds from the benchmark's
// start: sent, first token, last token; and its output tokens.
type RequestTiming struct {
	Send, First, Finish float64
	Out                 int
}

// Metrics returns the result under bench_serving's JSONL names
// (mean_ttft_ms, output_throughput, ...) plus startup_seconds.
func (r Result) Metrics() map[string]float64 {
	return map[string]float64{
		"completed": float64(r.Completed), "duration": r.DurationS,
		"total_input_tokens": float64(r.TotalInputTokens), "total_output_tokens": float64(r.TotalOutputTokens),
		"request_throughput": r.RequestThroughput, "input_throughput": r.InputThroughput,
		"output_throughput": r.OutputThroughput, "total_throughput": r.TotalThroughput,
		"concurrency":  r.Concurrency,
		"mean_ttft_ms": r.MeanTTFTMs, "median_ttft_ms": r.MedianTTFTMs, "p90_ttft_ms": r.P90TTFTMs, "p99_ttft_ms": r.P99TTFTMs,
		"mean_tpot_ms": r.MeanTPOTMs, "median_tpot_ms": r.MedianTPOTMs, "p99_tpot_ms": r.P99TPOTMs,
		"mean_itl_ms": r.MeanITLMs, "median_itl_ms": r.MedianITLMs, "p95_itl_ms": r.P95ITLMs, "p99_itl_ms": r.P99ITLMs,
		"mean_e2e_latency_ms": r.MeanE2EMs, "median_e2e_latency_ms": r.MedianE2EMs,
		"p90_e2e_latency_ms": r.P90E2EMs, "p99_e2e_latency_ms": r.P99E2EMs,
		"startup_seconds": r.StartupSeconds, "cache_hit_rate": r.CacheHitRate,
	}
}

// RuntimeOOM is the error SGLang dies with when a forward's activations do
// not fit next to the static memory pool.
func (p *Plan) RuntimeOOM(tokens, nReqs int) *LaunchError {
	need := p.ActivationGB(tokens, nReqs)
	return oom(PhaseRuntime, "torch.OutOfMemoryError",
		"CUDA out of memory. Tried to allocate %.2f GiB. GPU 0 has a total capacity of %.2f GiB of which %.2f MiB is free. "+
			"Of the allocated memory %.2f GiB is allocated by PyTorch, and %.2f MiB is reserved by PyTorch but unallocated. "+
			"If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.",
		need, p.HW.MemoryGB, max(p.FreeGB, 0)*1024, p.HW.MemoryGB*p.Config.MemFractionStatic+p.GraphGB, 120.0)
}

// ErrBadWorkload reports an unusable Workload.
var ErrBadWorkload = errors.New("model: bad workload")

type simReq struct {
	Req
	send, first, last, finish float64
	out                       int
}

// Evaluate returns the expected (noise-free) result of benchmarking cfg on
// hw and m with workload w, by running the same scheduler the simulator
// serves with in virtual time. It returns a *LaunchError when SGLang would
// refuse or fail the config (at startup, or with a runtime OOM under this
// workload), with Result.Plan set when the launch itself succeeded.
//
// DP replicas are simulated independently, each with its round-robin share
// of the requests and of the concurrency cap.
func Evaluate(cfg Config, hw Hardware, m Model, w Workload) (Result, error) {
	reqs, err := w.requests()
	if err != nil {
		return Result{}, err
	}
	p, err := NewPlan(cfg, hw, m)
	if err != nil {
		return Result{}, err
	}
	res := Result{Plan: p, StartupSeconds: p.StartupSeconds()}
	itl := newHistogram()
	var batchSum, batchSteps float64
	end := 0.0
	for rep := range p.Replicas {
		var mine []*simReq
		for i := rep; i < len(reqs); i += p.Replicas {
			mine = append(mine, &reqs[i])
		}
		conc := 0
		if w.MaxConcurrency > 0 {
			conc = w.MaxConcurrency / p.Replicas
			if rep < w.MaxConcurrency%p.Replicas {
				conc++
			}
			conc = max(conc, 1)
		}
		e := NewEngine(p, uint64(w.Seed)+uint64(rep))
		fin, err := runReplica(e, mine, conc, itl, &batchSum, &batchSteps, &res)
		if err != nil {
			return res, err
		}
		end = max(end, fin)
		res.Retractions += e.Retractions
		res.PeakPrefillTokens = max(res.PeakPrefillTokens, e.PeakPrefillTokens)
	}

	// Aggregate like bench_serving's metrics.py.
	var ttft, tpot, e2e []float64
	sumE2E := 0.0
	for i := range reqs {
		r := &reqs[i]
		res.Completed++
		res.TotalInputTokens += r.InputLen
		res.TotalOutputTokens += r.out
		res.CachedTokens += r.CachedTokens
		ttft = append(ttft, (r.first-r.send)*1000)
		e2e = append(e2e, (r.finish-r.send)*1000)
		sumE2E += r.finish - r.send
		if r.out > 1 {
			tpot = append(tpot, (r.finish-r.first)*1000/float64(r.out-1))
		}
		res.Requests = append(res.Requests, RequestTiming{Send: r.send, First: r.first, Finish: r.finish, Out: r.out})
	}
	start := 0.0
	res.DurationS = end - start
	if res.DurationS > 0 {
		d := res.DurationS
		res.RequestThroughput = float64(res.Completed) / d
		res.InputThroughput = float64(res.TotalInputTokens) / d
		res.OutputThroughput = float64(res.TotalOutputTokens) / d
		res.TotalThroughput = res.InputThroughput + res.OutputThroughput
		res.Concurrency = sumE2E / d
	}
	res.MeanTTFTMs, res.MedianTTFTMs, res.P90TTFTMs, res.P99TTFTMs = mean(ttft), percentile(ttft, 50), percentile(ttft, 90), percentile(ttft, 99)
	res.MeanTPOTMs, res.MedianTPOTMs, res.P99TPOTMs = mean(tpot), percentile(tpot, 50), percentile(tpot, 99)
	res.MeanE2EMs, res.MedianE2EMs, res.P90E2EMs, res.P99E2EMs = mean(e2e), percentile(e2e, 50), percentile(e2e, 90), percentile(e2e, 99)
	res.MeanITLMs, res.MedianITLMs, res.P95ITLMs, res.P99ITLMs = itl.mean()*1000, itl.quantile(0.5)*1000, itl.quantile(0.95)*1000, itl.quantile(0.99)*1000
	if batchSteps > 0 {
		res.MeanRunningBatchSize = batchSum / batchSteps
	}
	if res.TotalInputTokens > 0 {
		res.CacheHitRate = float64(res.CachedTokens) / float64(res.TotalInputTokens)
	}
	return res, nil
}

// requests draws the benchmark's requests: lengths, token ids (for a
// dataset with shared prefixes) and Poisson send times, as bench_serving
// draws them.
func (w Workload) requests() ([]simReq, error) {
	bad := func() error { return fmt.Errorf("%w: %+v", ErrBadWorkload, w) }
	if w.NumPrompts < 0 || w.MaxConcurrency < 0 || w.RequestRate < 0 {
		return nil, bad()
	}
	rng := rand.New(rand.NewPCG(uint64(w.Seed), 0xbe4c))
	var reqs []simReq
	switch w.Dataset {
	case "", DatasetRandom:
		if w.InputLen < 1 || w.OutputLen < 1 || w.RangeRatio < 0 || w.RangeRatio > 1 {
			return nil, bad()
		}
		n := w.NumPrompts
		if n == 0 {
			n = 1000
		}
		draw := func(l int) int {
			lo := max(int(float64(l)*w.RangeRatio), 1)
			return lo + rng.IntN(l-lo+1)
		}
		reqs = make([]simReq, n)
		t := 0.0
		for i := range reqs {
			reqs[i].InputLen = draw(w.InputLen)
			reqs[i].out = draw(w.OutputLen)
			t = w.nextSend(rng, t)
			reqs[i].send = t
		}
	case DatasetGeneratedSharedPfx:
		if w.GSPNumGroups < 1 || w.GSPPromptsPerGroup < 1 || w.GSPSystemPromptLen < 0 || w.GSPQuestionLen < 1 || w.GSPOutputLen < 1 {
			return nil, bad()
		}
		ids := func(n int) []int32 {
			out := make([]int32, n)
			for i := range out {
				out[i] = int32(rng.IntN(32000))
			}
			return out
		}
		for range w.GSPNumGroups {
			system := ids(w.GSPSystemPromptLen)
			for range w.GSPPromptsPerGroup {
				tokens := append(slices.Clip(system), ids(w.GSPQuestionLen)...)
				reqs = append(reqs, simReq{Req: Req{InputLen: len(tokens), Tokens: tokens}, out: w.GSPOutputLen})
			}
		}
		rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		if w.NumPrompts > 0 && w.NumPrompts < len(reqs) {
			reqs = reqs[:w.NumPrompts]
		}
		t := 0.0
		for i := range reqs {
			t = w.nextSend(rng, t)
			reqs[i].send = t
		}
	default:
		return nil, fmt.Errorf("%w: unknown dataset %q", ErrBadWorkload, w.Dataset)
	}
	for i := range reqs {
		r := &reqs[i]
		r.MaxNewTokens, r.OutputLen, r.ID = r.out, r.out, int64(i)
	}
	return reqs, nil
}

// nextSend is the send time after t: a Poisson process at RequestRate, or
// all at once.
func (w Workload) nextSend(rng *rand.Rand, t float64) float64 {
	if w.RequestRate > 0 && !math.IsInf(w.RequestRate, 1) {
		t += rng.ExpFloat64() / w.RequestRate
	}
	return t
}

// runReplica drives one engine in virtual time and returns when its last
// request finished.
func runReplica(e *Engine, reqs []*simReq, conc int, itl *histogram, batchSum, batchSteps *float64, res *Result) (float64, error) {
	now := 0.0
	next, inflight, done := 0, 0, 0
	for done < len(reqs) {
		// Send every request whose time has come and that has a slot.
		for next < len(reqs) && reqs[next].send <= now && (conc == 0 || inflight < conc) {
			r := reqs[next]
			r.send = max(r.send, now)
			r.Tag = r
			e.Add(&r.Req)
			next++
			inflight++
		}
		limit := math.Inf(1)
		if next < len(reqs) && (conc == 0 || inflight < conc) {
			limit = reqs[next].send - now
		}
		if e.Idle() {
			if next >= len(reqs) {
				break
			}
			now = max(now, reqs[next].send)
			continue
		}
		it, ok := e.Next(math.MaxInt32, limit)
		if !ok {
			if next >= len(reqs) {
				break
			}
			now = max(now, reqs[next].send)
			continue
		}
		if it.OOM {
			return now, e.p.RuntimeOOM(it.PrefillTokens+it.BatchSize, it.PrefillReqs+it.BatchSize)
		}
		start := now
		now += it.Seconds
		res.MaxRunningBatch = max(res.MaxRunningBatch, it.BatchSize)
		if it.BatchSize > 0 {
			*batchSum += float64(it.BatchSize * it.Steps)
			*batchSteps += float64(it.Steps)
		}
		d := it.Seconds / float64(it.Steps)
		if it.Kind == IterDecode && it.Steps > 1 {
			itl.add(d, float64((it.Steps-1)*len(it.Decoded)))
		}
		for _, q := range it.Decoded {
			r := q.Tag.(*simReq)
			if it.Kind == IterDecode {
				itl.add(start+d-r.last, 1)
			} else {
				itl.add(now-r.last, 1)
			}
			r.last = now
		}
		for _, q := range it.Prefilled {
			r := q.Tag.(*simReq)
			if q.Generated == 1 {
				r.first = now
			} else {
				itl.add(now-r.last, 1)
			}
			r.last = now
		}
		for _, q := range it.Finished {
			r := q.Tag.(*simReq)
			r.finish = now
			r.out = q.Generated
			done++
			inflight--
		}
	}
	return now, nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// percentile is numpy.percentile with linear interpolation; it sorts xs.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	pos := q / 100 * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (xs[hi]-xs[lo])*(pos-float64(lo))
}

// histogram is a weighted log-bucketed histogram (1 % resolution) of
// durations in seconds, for pooled inter-token latencies.
type histogram struct {
	counts     []float64
	sum, total float64
	lastV      float64 // memo: most adds repeat the previous value
	lastI      int
}

const (
	histMin    = 1e-5
	histGrowth = 1.01
)

func newHistogram() *histogram {
	n := int(math.Log(1e3/histMin)/math.Log(histGrowth)) + 2
	return &histogram{counts: make([]float64, n)}
}

func (h *histogram) add(v, w float64) {
	if w <= 0 {
		return
	}
	h.sum += v * w
	h.total += w
	if v == h.lastV {
		h.counts[h.lastI] += w
		return
	}
	i := 0
	if v > histMin {
		i = min(int(math.Log(v/histMin)/math.Log(histGrowth))+1, len(h.counts)-1)
	}
	h.counts[i] += w
	h.lastV, h.lastI = v, i
}

func (h *histogram) mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / h.total
}

func (h *histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	target := q * h.total
	acc := 0.0
	for i, c := range h.counts {
		acc += c
		if acc >= target && c > 0 {
			if i == 0 {
				return histMin
			}
			// geometric middle of the bucket
			return histMin * math.Pow(histGrowth, float64(i)-0.5)
		}
	}
	return histMin * math.Pow(histGrowth, float64(len(h.counts)))
}
