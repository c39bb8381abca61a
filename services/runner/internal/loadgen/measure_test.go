package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

func TestMeasure_ladder_measures_every_level_on_one_server(t *testing.T) {
	t.Parallel()
	s := &sseServer{ttft: 5 * time.Millisecond, ttftPerStream: 10 * time.Millisecond, itl: time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests, w.MaxConcurrency = 12, 1, 2
	w.Load = &events.LoadLadder{Concurrency: []int{1, 2, 4}}
	var mu sync.Mutex
	var seen []events.LoadPoint
	out, err := Measure(context.Background(), Options{BaseURL: url, Workload: w, OnLevel: func(p events.LoadPoint) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.LoadPoints) != 3 || len(seen) != 3 {
		t.Fatalf("%d load points, %d reported as progress; want 3", len(out.LoadPoints), len(seen))
	}
	for i, want := range []int{1, 2, 4} {
		p := out.LoadPoints[i]
		if p.MaxConcurrency != want || p.Metrics["completed"] != 12 || p.Error != "" || p.SLOMet != nil {
			t.Fatalf("point %d = %+v", i, p)
		}
	}
	// TTFT grows with the streams in flight, level by level.
	if !(out.LoadPoints[0].Metrics["mean_ttft_ms"] < out.LoadPoints[2].Metrics["mean_ttft_ms"]) {
		t.Fatalf("mean TTFT %v at 1 stream, %v at 4", out.LoadPoints[0].Metrics["mean_ttft_ms"], out.LoadPoints[2].Metrics["mean_ttft_ms"])
	}
	// The headline is the workload's max_concurrency level.
	if out.Metrics["mean_ttft_ms"] != out.LoadPoints[1].Metrics["mean_ttft_ms"] || out.Headline == nil || len(out.InputLens()) != 12 {
		t.Fatalf("headline metrics %v, want level 2's", out.Metrics)
	}
	if got := s.requests.Load(); got != 3*(12+1) {
		t.Fatalf("server saw %d generation requests, want 3 levels × (12 + 1 warm-up)", got)
	}
	if got := s.flushes.Load(); got != 2 {
		t.Fatalf("%d cache flushes, want one before each level after the first", got)
	}
	// The points are bench_serving records in JSON.
	b, _ := json.Marshal(out.LoadPoints[2])
	var flat map[string]any
	_ = json.Unmarshal(b, &flat)
	if flat["max_concurrency"] != 4.0 || flat["mean_ttft_ms"] == nil || flat["output_throughput"] == nil {
		t.Fatalf("load point JSON %s", b)
	}
}

func TestMeasure_ladder_stops_at_the_first_failing_level(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenHeadline float64
		expectedErr   error
	}{
		// The headline level was measured: the trial stands, the failing
		// level is kept with its error.
		{name: "above the headline", givenHeadline: 2, expectedErr: nil},
		{name: "at the headline", givenHeadline: 8, expectedErr: ErrLadderStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := startSSE(t, &sseServer{itl: time.Millisecond, ttft: 5 * time.Millisecond, overloadAbove: 5})
			w := baseWorkload()
			w.NumPrompts, w.WarmupRequests = 16, 0
			w.Load = &events.LoadLadder{Concurrency: []int{2, 8, 16}, Headline: tt.givenHeadline}
			out, err := Measure(context.Background(), Options{BaseURL: url, Workload: w})
			if !errors.Is(err, tt.expectedErr) {
				t.Fatalf("err = %v, want %v", err, tt.expectedErr)
			}
			if len(out.LoadPoints) != 2 || out.LoadPoints[1].MaxConcurrency != 8 || !strings.Contains(out.LoadPoints[1].Error, "HTTP 503") {
				t.Fatalf("points %+v: want level 2, then 8 with its error, and no level 16", out.LoadPoints)
			}
			if tt.expectedErr == nil && (!strings.Contains(out.Stopped, "concurrency 8") || out.Metrics["completed"] != 16) {
				t.Fatalf("stopped %q, headline %v", out.Stopped, out.Metrics)
			}
		})
	}
}

func TestMeasure_capacity_finds_a_known_capacity(t *testing.T) {
	if testing.Short() {
		t.Skip("a capacity search: a few seconds of load")
	}
	t.Parallel()
	// TTFT = 20 ms + 20 ms per request in flight: p90 TTFT meets 400 ms up
	// to 19 concurrent streams, not at 20 (one stream's worth of latency is
	// far above the scheduling noise of a busy machine).
	s := &sseServer{ttft: 20 * time.Millisecond, ttftPerStream: 20 * time.Millisecond, itl: time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests, w.RandomOutputLen = 20, 1, 2
	w.Capacity = &events.CapacitySearch{Search: events.SearchConcurrency, Max: 64, SLO: map[string]float64{"p90_ttft_ms": 400},
		RequestsPerLevel: 40}
	out, err := Measure(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Metrics["capacity_concurrency"]
	t.Logf("capacity %v after levels %v", got, levelsOf(out.LoadPoints))
	if got < 16 || got > 19 || len(out.LoadPoints) > 8 {
		t.Fatalf("capacity %v after %d levels %v; true capacity 19", got, len(out.LoadPoints), levelsOf(out.LoadPoints))
	}
	if out.Metrics["capacity_output_throughput"] <= 0 || out.Metrics["capacity_goodput"] <= 0 || out.Reason != "" {
		t.Fatalf("capacity metrics %v, reason %q", out.Metrics, out.Reason)
	}
	for _, p := range out.LoadPoints {
		if p.SLOMet == nil || *p.SLOMet != (p.Metrics["p90_ttft_ms"] <= 400) {
			t.Fatalf("point %+v: slo_met disagrees with its p90", p)
		}
	}
}

func TestMeasure_capacity_with_no_level_meeting_the_slo(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{ttft: 30 * time.Millisecond, itl: time.Millisecond})
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests, w.RandomOutputLen = 4, 0, 2
	w.Capacity = &events.CapacitySearch{Search: events.SearchConcurrency, Max: 8, SLO: map[string]float64{"p99_ttft_ms": 5}, RequestsPerLevel: 8}
	out, err := Measure(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["capacity_concurrency"] != 0 || out.Metrics["capacity_output_throughput"] != 0 ||
		!strings.Contains(out.Reason, "p99_ttft_ms") || out.Metrics["mean_ttft_ms"] < 30 {
		t.Fatalf("metrics %v reason %q", out.Metrics, out.Reason)
	}
	if last := out.LoadPoints[len(out.LoadPoints)-1]; last.MaxConcurrency != 1 {
		t.Fatalf("the search ends at the lowest level; levels %v", levelsOf(out.LoadPoints))
	}
}

func levelsOf(ps []events.LoadPoint) []float64 {
	var out []float64
	for _, p := range ps {
		out = append(out, p.Level())
	}
	return out
}

func TestLevel_a_ramp_is_sent_and_not_measured(t *testing.T) {
	t.Parallel()
	s := &sseServer{itl: time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests, w.MaxConcurrency = 10, 0, 16
	sess, err := newSession(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	res, err := sess.level(w, 0, 16) // one full wave of 16 first
	if err != nil {
		t.Fatal(err)
	}
	if got := s.requests.Load(); got != 26 || len(res.Requests) != 10 || res.Metrics["completed"] != 10 {
		t.Fatalf("server saw %d requests, %d measured; want 26 sent, the last 10 measured", got, len(res.Requests))
	}
}
