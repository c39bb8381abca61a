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
