package natsio

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// observingExec reports two measurements, then runs until stopped.
type observingExec struct{ started chan int }

func (o *observingExec) Run(ctx context.Context, q events.TrialQueued, gpus []int, p func(string, string)) (events.TrialResult, error) {
	return o.RunObserved(ctx, q, gpus, p, func(events.Measurement) {})
}

func (o *observingExec) RunObserved(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string), observe func(events.Measurement)) (events.TrialResult, error) {
	for step := 1; step <= 2; step++ {
		observe(events.Measurement{Step: step, Fraction: 0.1 * float64(step), Requests: 10 * step,
			Metrics: map[string]float64{"mean_ttft_ms": 100 + float64(step), "output_throughput": 900}})
	}
	o.started <- q.Trial
	<-ctx.Done()
	return events.TrialResult{}, context.Cause(ctx)
}

func TestRunner_publishes_measurements_and_records_an_early_stop_as_pruned(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	exec := &observingExec{started: make(chan int, 1)}
	startRunner(t, js, "r1", 2, 3*time.Second, exec)
	queue(t, js, "s1", 4, 2)
	waitStarted(t, exec.started)

	// The measurements are on the progress stream, in order.
	var got []events.Measurement
	waitFor(t, 10*time.Second, "two measurements", func() bool {
		got = got[:0]
		err := natsx.Replay(context.Background(), js, events.StreamProgress, events.ProgressSubject("s1", 4), func(data []byte, _ natsx.Meta) error {
			ev, err := events.Decode[events.TrialProgress](data, events.TypeTrialProgress)
			if err == nil && ev.Phase == events.PhaseMeasured && ev.Measurement != nil {
				got = append(got, *ev.Measurement)
			}
			return err
		})
		return err == nil && len(got) == 2
	})
	if got[0].Step != 1 || got[1].Metrics["mean_ttft_ms"] != 102 {
		t.Fatalf("measurements %+v", got)
	}

	leases, err := natsx.OpenLeases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	req := events.StopRequest{Study: "s1", Trial: 4, Reason: "dominated by trial 1", By: "sampler", EarlyStop: true}
	if err := RequestStop(context.Background(), leases, req); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pruned outcome", func() bool { return len(outcomes(t, js, "s1")) == 1 })
	res := outcomes(t, js, "s1")[0]
	if res.State != events.StatePruned || res.FailureClass != "" || !strings.Contains(res.Reason, "dominated by trial 1") {
		t.Fatalf("outcome %s %q %q, want PRUNED with the reason", res.State, res.FailureClass, res.Reason)
	}
	if res.Metrics["mean_ttft_ms"] != 102 || res.GPUSeconds <= 0 || len(res.GPUs) != 2 {
		t.Fatalf("pruned result keeps metrics %v, gpu_seconds %v, gpus %v", res.Metrics, res.GPUSeconds, res.GPUs)
	}
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
}
