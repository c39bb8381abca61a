package model

import (
	"testing"
)

// TestEvaluate_latencyGrowsWithLoad is the load-dependent latency the
// capacity search needs (issue 12.8): on one config, p99 TTFT and TPOT rise
// with concurrency (bigger decode batches read more KV per step; prefills
// of new arrivals stall decoding); past saturation throughput stops growing
// and TTFT explodes (requests queue for KV and running slots); an open-loop
// request rate past the knee queues without bound.
func TestEvaluate_latencyGrowsWithLoad(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	eval := func(w Workload) Result {
		t.Helper()
		w.InputLen, w.OutputLen, w.RangeRatio, w.Seed = 1024, 256, 0.5, 1
		r, err := Evaluate(Config{}, hw, m, w)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var prev Result
	levels := []int{1, 4, 16, 64, 256, 512, 1024}
	byConc := map[int]Result{}
	for i, c := range levels {
		r := eval(Workload{NumPrompts: max(4*c, 64), MaxConcurrency: c})
		byConc[c] = r
		if i > 0 && (r.P99TPOTMs < 0.95*prev.P99TPOTMs || // TPOT plateaus once the KV pool caps the batch
			r.P99TTFTMs < prev.P99TTFTMs || r.MedianTTFTMs < 0.95*prev.MedianTTFTMs) {
			t.Errorf("concurrency %d -> %d: p99 TTFT %.0f -> %.0f ms, p50 TTFT %.0f -> %.0f ms, p99 TPOT %.1f -> %.1f ms: latency must not fall with load",
				levels[i-1], c, prev.P99TTFTMs, r.P99TTFTMs, prev.MedianTTFTMs, r.MedianTTFTMs, prev.P99TPOTMs, r.P99TPOTMs)
		}
		prev = r
	}
	if lo, hi := byConc[1], byConc[256]; hi.P99TPOTMs < 5*lo.P99TPOTMs || hi.OutputThroughput < 20*lo.OutputThroughput {
		t.Errorf("batching: c=1 TPOT %.1f ms %.0f tok/s; c=256 TPOT %.1f ms %.0f tok/s", lo.P99TPOTMs, lo.OutputThroughput, hi.P99TPOTMs, hi.OutputThroughput)
	}
	// Saturation: the KV pool caps the running batch; more streams only queue.
	if s, o := byConc[512], byConc[1024]; o.OutputThroughput > 1.05*s.OutputThroughput || o.MedianTTFTMs < 5*s.MedianTTFTMs {
		t.Errorf("past saturation: c=512 %.0f tok/s, p50 TTFT %.0f ms; c=1024 %.0f tok/s, p50 TTFT %.0f ms", s.OutputThroughput, s.MedianTTFTMs, o.OutputThroughput, o.MedianTTFTMs)
	}
	// Open loop: below the knee TTFT stays near one prefill; past it the queue grows without bound.
	below, above := eval(Workload{NumPrompts: 1000, RequestRate: 10}), eval(Workload{NumPrompts: 1000, RequestRate: 40})
	if below.P99TTFTMs > 200 || above.P99TTFTMs < 20*below.P99TTFTMs || above.RequestThroughput > 0.75*40 {
		t.Errorf("10 req/s: p99 TTFT %.0f ms; 40 req/s: p99 TTFT %.0f ms at %.1f req/s served", below.P99TTFTMs, above.P99TTFTMs, above.RequestThroughput)
	}
	// A request-pool cap queues requests the KV could hold.
	capped, _ := Evaluate(Config{MaxRunningRequests: 16}, hw, m, Workload{NumPrompts: 256, InputLen: 1024, OutputLen: 256, RangeRatio: 0.5, MaxConcurrency: 64, Seed: 1})
	if capped.MaxRunningBatch > 16 || capped.MedianTTFTMs < 10*byConc[64].MedianTTFTMs {
		t.Errorf("max_running_requests 16 at 64 streams: batch %d, p50 TTFT %.0f ms vs %.0f uncapped", capped.MaxRunningBatch, capped.MedianTTFTMs, byConc[64].MedianTTFTMs)
	}
}
