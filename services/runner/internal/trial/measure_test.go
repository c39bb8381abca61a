package trial

import (
	"context"
	"sync"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
)

type observed struct {
	mu  sync.Mutex
	got []events.Measurement
}

func (o *observed) add(m events.Measurement) { o.mu.Lock(); o.got = append(o.got, m); o.mu.Unlock() }

func TestRunObserved_reports_partial_measurements(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_ITL": "2ms"})
	q := queued(5)
	q.Workload.NumPrompts, q.Workload.MaxConcurrency = 40, 2
	var o observed
	res, err := e.RunObserved(context.Background(), q, []int{0, 1}, nil, o.add)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %s %s", err, res.State, res.Reason)
	}
	if res.GPUSeconds <= 0 {
		t.Errorf("gpu_seconds = %v", res.GPUSeconds)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) < 2 {
		t.Fatalf("%d measurements, want several (checkpoints at %v)", len(o.got), CheckpointFractions)
	}
	prev := 0.0
	for i, m := range o.got {
		if m.Step != i+1 || m.Fraction <= prev || m.Fraction >= 1 || m.Requests < 4 {
			t.Fatalf("measurement %d: step %d fraction %v requests %d", i, m.Step, m.Fraction, m.Requests)
		}
		prev = m.Fraction
		if m.Metrics["completed"] != float64(m.Requests) || m.Metrics["output_throughput"] <= 0 || m.Metrics["startup_seconds"] <= 0 {
			t.Fatalf("measurement %d metrics %v", i, m.Metrics)
		}
	}
}

func TestRunObserved_mix_gives_worst_case_bounds_before_the_last_workload(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_ITL": "2ms"})
	q := mixQueued()
	q.Workloads[0].NumPrompts, q.Workloads[1].NumPrompts = 20, 20
	var o observed
	res, err := e.RunObserved(context.Background(), q, []int{0}, nil, o.add)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %s %s", err, res.State, res.Reason)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	sawBound, sawLast := false, false
	for _, m := range o.got {
		_, weighted := m.Metrics["output_throughput"]
		switch {
		case m.WorkloadMetrics["chat"] == nil: // chat still running: its worst TTFT so far, no weighted estimate
			if weighted || m.Lower != nil {
				t.Errorf("during chat: metrics %v lower %v", m.Metrics, m.Lower)
			}
		default: // chat finished: its mean TTFT bounds the mix's worst from below
			if m.Lower["mean_ttft_ms"] != res.WorkloadMetrics["chat"]["mean_ttft_ms"] {
				t.Errorf("lower bound %v, chat's mean TTFT %v", m.Lower, res.WorkloadMetrics["chat"]["mean_ttft_ms"])
			}
			sawBound = true
			sawLast = sawLast || weighted
		}
		if _, ok := m.Metrics["mean_ttft_ms"]; !ok {
			t.Errorf("no worst-case TTFT estimate in %v", m.Metrics)
		}
	}
	if !sawBound || !sawLast {
		t.Fatalf("measurements %+v: want a bound after chat and a full estimate during rag", o.got)
	}
}

func TestRunObserved_ladder_reports_its_headline_level_not_checkpoints(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_ITL": "2ms"})
	q := queued(11)
	q.Workload.NumPrompts = 20
	q.Workload.Load = &events.LoadLadder{Concurrency: []int{1, 2, 4}}
	var o observed
	res, err := e.RunObserved(context.Background(), q, []int{0}, nil, o.add)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %s %s", err, res.State, res.Reason)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// Level 1 is no estimate of the headline (2); level 2 is the headline
	// itself; after level 4 there is nothing left to stop.
	if len(o.got) != 1 {
		t.Fatalf("%d measurements %+v, want the headline level's only", len(o.got), o.got)
	}
	m := o.got[0]
	if m.Metrics["mean_ttft_ms"] != res.LoadPoints[1].Metrics["mean_ttft_ms"] || len(m.LoadPoints) != 2 || m.Fraction < 0.66 || m.Fraction > 0.67 {
		t.Fatalf("measurement %+v", m)
	}
}

func TestCapacityBounds(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	q := queued(12)
	q.GPUs = 2
	q.Workload.Capacity = &events.CapacitySearch{Search: events.SearchConcurrency, Max: 256, SLO: map[string]float64{"p99_ttft_ms": 500}}
	var o observed
	m := newMeasurer(q, 30, o.add)
	m.level(events.LoadPoint{MaxConcurrency: 16, SLOMet: &yes, Metrics: map[string]float64{"p99_ttft_ms": 200, "output_throughput": 1500, "completed": 200}})
	m.level(events.LoadPoint{MaxConcurrency: 64, SLOMet: &no, Metrics: map[string]float64{"p99_ttft_ms": 900, "output_throughput": 4000, "completed": 200}})
	m.level(events.LoadPoint{MaxConcurrency: 32, SLOMet: &yes, Metrics: map[string]float64{"p99_ttft_ms": 420, "output_throughput": 3000, "completed": 200}})
	m.level(events.LoadPoint{MaxConcurrency: 48, SLOMet: &no, Metrics: map[string]float64{"p99_ttft_ms": 610, "output_throughput": 3600, "completed": 200}})
	if len(o.got) != 4 {
		t.Fatalf("%d measurements", len(o.got))
	}
	first, last := o.got[0], o.got[3]
	if first.Upper != nil || first.Lower["p99_ttft_ms"] != 200 {
		t.Errorf("after a met level only: upper %v lower %v", first.Upper, first.Lower)
	}
	// Capacity is in [32, 48): throughput at most 48's, latency at least 32's.
	if last.Upper["capacity_concurrency"] != 48 || last.Upper["capacity_output_throughput"] != 3600 || last.Upper["capacity_output_throughput_per_gpu"] != 1800 {
		t.Errorf("upper bounds %v", last.Upper)
	}
	if last.Lower["p99_ttft_ms"] != 420 || last.Fraction != 0.5 || len(last.LoadPoints) != 4 || last.Metrics["startup_seconds"] != 30 {
		t.Errorf("lower %v fraction %v points %d metrics %v", last.Lower, last.Fraction, len(last.LoadPoints), last.Metrics)
	}
}
