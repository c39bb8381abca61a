package loadgen

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"
)

func TestRun_checkpoints_report_what_was_measured_so_far(t *testing.T) {
	t.Parallel()
	s := &sseServer{ttft: 20 * time.Millisecond, itl: 2 * time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.NumPrompts, w.MaxConcurrency = 40, 4
	var mu sync.Mutex
	var got []Checkpoint
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w, Timeout: 30 * time.Second,
		Checkpoints: []float64{0.25, 0.5, 0.5, 0.75, 1},
		OnCheckpoint: func(c Checkpoint) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // a slow consumer does not hold up the streams
		}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 0.25, 0.5 and 0.75 of 40 (the repeated 0.5 and 1 are no checkpoints);
	// one may be skipped while the previous is aggregated, none after Run.
	if len(got) == 0 || len(got) > 3 {
		t.Fatalf("%d checkpoints, want 1 to 3", len(got))
	}
	prev := 0
	for _, c := range got {
		n := len(c.Done)
		if c.Total != 40 || n <= prev || n >= 40 || c.Metrics["completed"] != float64(n) {
			t.Fatalf("checkpoint of %d/%d requests (completed %v) after %d", n, c.Total, c.Metrics["completed"], prev)
		}
		prev = n
		// The streamed tokens count the streams in flight too: at least the
		// finished requests' 8 tokens each, at most every stream's.
		if c.StreamedTokens < int64(8*n) || c.StreamedTokens > int64(8*(n+4)) {
			t.Errorf("streamed %d tokens with %d of 40 finished (4 in flight)", c.StreamedTokens, n)
		}
		if want := float64(c.StreamedTokens) / c.Elapsed.Seconds(); math.Abs(c.Metrics["output_throughput"]-want) > 1e-6*want {
			t.Errorf("output_throughput %v, want streamed/elapsed %v", c.Metrics["output_throughput"], want)
		}
		if c.Metrics["mean_ttft_ms"] < 20 {
			t.Errorf("mean_ttft_ms %v below the server's 20 ms", c.Metrics["mean_ttft_ms"])
		}
	}
	// The full run is measured as without checkpoints.
	if res.Metrics["completed"] != 40 || res.Metrics["total_output_tokens"] != 320 {
		t.Fatalf("final metrics %v", res.Metrics)
	}
}
