package trial

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
)

func mixQueued() events.TrialQueued {
	q := queued(7)
	chat, rag := q.Workload, q.Workload
	chat.RandomOutputLen, chat.NumPrompts = 4, 6
	rag.RandomInputLen, rag.RandomOutputLen, rag.NumPrompts = 64, 8, 4
	q.Workloads = []events.NamedWorkload{{Name: "chat", Weight: 0.7, Workload: chat}, {Name: "rag", Weight: 0.3, Workload: rag}}
	q.MixAggregates = map[string]string{"mean_ttft_ms": events.AggregateMax}
	return q
}

func TestRun_mix_runs_every_workload_on_one_server(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", nil)
	var p phases
	res, err := e.Run(context.Background(), mixQueued(), []int{0}, p.record)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.State != events.StateComplete {
		t.Fatalf("state %s: %s %s\n%s", res.State, res.FailureClass, res.Reason, res.LogTail)
	}
	chat, rag := res.WorkloadMetrics["chat"], res.WorkloadMetrics["rag"]
	if chat["completed"] != 6 || rag["completed"] != 4 {
		t.Fatalf("workload metrics = %v", res.WorkloadMetrics)
	}
	if chat["gpus"] != 1 || chat["output_throughput_per_gpu"] != chat["output_throughput"] || rag["output_throughput_per_gpu"] <= 0 {
		t.Fatalf("per-GPU twins of the workloads: chat %v rag %v", chat, rag)
	}
	if chat["total_output_tokens"] != 24 || rag["total_output_tokens"] != 32 {
		t.Fatalf("output tokens chat %v rag %v, want 6x4 and 4x8", chat["total_output_tokens"], rag["total_output_tokens"])
	}
	// Headline metrics aggregate the workloads: counts add up, the weighted
	// mean by default, the worst where the study asks for it.
	if res.Metrics["completed"] != 10 {
		t.Errorf("completed = %v, want 10", res.Metrics["completed"])
	}
	if want := 0.7*chat["output_throughput"] + 0.3*rag["output_throughput"]; math.Abs(res.Metrics["output_throughput"]-want) > 1e-6*want {
		t.Errorf("output_throughput = %v, want the weighted %v", res.Metrics["output_throughput"], want)
	}
	if want := math.Max(chat["mean_ttft_ms"], rag["mean_ttft_ms"]); res.Metrics["mean_ttft_ms"] != want {
		t.Errorf("mean_ttft_ms = %v, want the worst %v", res.Metrics["mean_ttft_ms"], want)
	}
	if res.Metrics["startup_seconds"] <= 0 || res.Units["output_throughput"] != "tok/s" {
		t.Errorf("startup %v, units %v", res.Metrics["startup_seconds"], res.Units)
	}
	launches, bench := 0, 0
	for _, ph := range p.got {
		switch ph {
		case events.PhaseLaunching:
			launches++
		case events.PhaseBenchmarking:
			bench++
		}
	}
	if launches != 1 || bench != 3 { // one start, then one report per workload
		t.Errorf("phases %v: %d launches, %d benchmarking reports", p.got, launches, bench)
	}
}

func TestRun_mix_failing_workload_keeps_the_ones_before(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", nil)
	q := mixQueued()
	q.Workloads[1].Dataset = "prompts"
	q.Workloads[1].PromptFile = filepath.Join(t.TempDir(), "missing.txt")
	res, err := e.Run(context.Background(), q, []int{0}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.State != events.StateFailed || res.FailureClass != events.FailBenchError || !strings.Contains(res.Reason, "workload rag (2 of 2)") {
		t.Fatalf("state %s class %s reason %q", res.State, res.FailureClass, res.Reason)
	}
	if res.WorkloadMetrics["chat"]["completed"] != 6 || res.WorkloadMetrics["rag"] != nil {
		t.Fatalf("workload metrics = %v, want chat's only", res.WorkloadMetrics)
	}
}
