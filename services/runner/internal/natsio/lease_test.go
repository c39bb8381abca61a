package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// queueCopy publishes a second message for a trial already queued (a new
// Nats-Msg-Id): to the runners it is the redelivery NATS makes when it lost
// the consumer's state in a crash.
func queueCopy(t *testing.T, js jetstream.JetStream, study string, trial, gpus int) {
	t.Helper()
	q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, study, trial, time.Now()), GPUs: gpus,
		Params: events.Params{"tp_size": float64(gpus)}}
	q.ID += ":copy"
	if _, err := natsx.Publish(context.Background(), js, events.TrialSubject(study, gpus, trial), q); err != nil {
		t.Fatal(err)
	}
}

// blockingExec runs trials until released, counting launches per trial.
type blockingExec struct {
	mu       sync.Mutex
	launches map[int]int
	started  chan int
	release  chan struct{}
}

func newBlockingExec() *blockingExec {
	return &blockingExec{launches: map[int]int{}, started: make(chan int, 16), release: make(chan struct{})}
}

func (b *blockingExec) Run(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
	b.mu.Lock()
	b.launches[q.Trial]++
	b.mu.Unlock()
	b.started <- q.Trial
	select {
	case <-b.release:
		return completeResult(q, gpus), nil
	case <-ctx.Done():
		return events.TrialResult{}, context.Cause(ctx)
	}
}

func (b *blockingExec) count(trial int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.launches[trial]
}

func waitStarted(t *testing.T, ch chan int) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no trial started")
	}
	return 0
}

func TestRunner_redelivery_of_a_trial_it_runs_is_not_run_again_on_another_GPU(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	exec := newBlockingExec()
	startRunner(t, js, "r1", 2, 3*time.Second, exec)
	queue(t, js, "s1", 3, 1)
	waitStarted(t, exec.started)
	queueCopy(t, js, "s1", 3, 1) // the runner has a free GPU and fetches it
	// Several deliveries of the copy come and are deferred while the first runs.
	waitFor(t, 10*time.Second, "the copy to be delivered and deferred", func() bool {
		c, _ := js.Consumer(context.Background(), events.StreamTrials, events.TrialsDurable(1))
		info, err := c.Info(context.Background())
		return err == nil && info.NumRedelivered > 0
	})
	if n := exec.count(3); n != 1 {
		t.Fatalf("trial 3 launched %d times while it ran", n)
	}
	close(exec.release)
	waitFor(t, 10*time.Second, "both messages settled", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	if n := exec.count(3); n != 1 {
		t.Fatalf("trial 3 launched %d times", n)
	}
	if n := len(outcomes(t, js, "s1")); n != 1 {
		t.Fatalf("%d outcomes", n)
	}
}

// fakeHolder is a live runner elsewhere holding a trial's lease: its fleet
// entry and lease are kept fresh until stop.
func fakeHolder(t *testing.T, js jetstream.JetStream, study string, trial int, every time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fleet, _ := js.KeyValue(ctx, events.BucketFleet)
	leases, err := natsx.OpenLeases(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	st := events.RunnerStatus{Runner: "elsewhere", Host: "other-host", Instance: "other-1-abc", PID: 1, GPUs: testGPUs(1), Slots: 1}
	l := events.Lease{Kind: events.LeaseRunner, Holder: "elsewhere", Instance: "other-1-abc", Host: "other-host", Token: "t",
		Study: study, Trial: trial, GPUs: []int{0}}
	rev, err := leases.Acquire(ctx, events.TrialLeaseKey(study, trial), l)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.PutJSON(ctx, fleet, "elsewhere", st); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				l.RenewedAt = time.Now()
				if r, err := leases.Renew(ctx, events.TrialLeaseKey(study, trial), l, rev); err == nil {
					rev = r
				}
				_ = natsx.PutJSON(ctx, fleet, "elsewhere", st)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		_ = fleet.Delete(context.Background(), "elsewhere")
	}
}

func TestRunner_trial_leased_by_a_live_runner_waits_and_runs_once_that_runner_is_gone(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	stopHolder := fakeHolder(t, js, "s1", 5, 200*time.Millisecond)
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "r1", 1, 3*time.Second, exec)
	queue(t, js, "s1", 5, 1)
	// For 3 s (several deferrals) the live holder keeps the trial.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if exec.calls.Load() != 0 {
			t.Fatal("a trial leased by a live runner was run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopHolder() // it dies: fleet entry gone, lease no longer renewed
	waitFor(t, 10*time.Second, "the result after the holder died", func() bool { return len(outcomes(t, js, "s1")) == 1 })
	if exec.calls.Load() != 1 {
		t.Fatalf("ran %d times", exec.calls.Load())
	}
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
}

func TestRunner_stop_request_cancels_the_running_trial(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	exec := newBlockingExec()
	startRunner(t, js, "r1", 1, 3*time.Second, exec)
	queue(t, js, "s1", 2, 1)
	waitStarted(t, exec.started)
	leases, err := natsx.OpenLeases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if err := RequestStop(context.Background(), leases, events.StopRequest{Study: "s1", Trial: 2, Reason: "dominated at 50%", By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the stopped outcome", func() bool { return len(outcomes(t, js, "s1")) == 1 })
	got := outcomes(t, js, "s1")[0]
	if got.State != events.StateFailed || got.FailureClass != events.FailStopped || !strings.Contains(got.Reason, "dominated at 50%") {
		t.Fatalf("outcome %+v", got)
	}
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	waitFor(t, 5*time.Second, "the lease to be released", func() bool {
		_, _, err := leases.Get(context.Background(), events.TrialLeaseKey("s1", 2))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

func newTestRunner(t *testing.T, js jetstream.JetStream, id, host string) *Runner {
	t.Helper()
	r, err := New(js, Config{
		RunnerID: id, Host: host, Backend: "sim", GPUs: testGPUs(1), AckWait: 3 * time.Second,
		HeartbeatEvery: 200 * time.Millisecond, PollEvery: 100 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	}, &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunner_duplicate_id_is_refused_naming_the_live_runner(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	first := startRunner(t, js, "gpu-07", 1, 3*time.Second, &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}})
	fleet, _ := js.KeyValue(context.Background(), events.BucketFleet)
	waitFor(t, 5*time.Second, "the first runner's registration", func() bool {
		_, err := fleet.Get(context.Background(), "gpu-07")
		return err == nil
	})
	// Same host: refused (here after a heartbeat: both are this test process).
	host, _ := os.Hostname()
	sameHost := newTestRunner(t, js, "gpu-07", "")
	sameHost.cfg.Host = first.r.cfg.Host
	if err := sameHost.Register(context.Background()); !errors.Is(err, ErrDuplicateRunner) || !strings.Contains(err.Error(), "gpu-07") {
		t.Fatalf("same host: %v", err)
	}
	// Another host: refused once the first runner's heartbeat is seen.
	other := newTestRunner(t, js, "gpu-07", host+"-elsewhere")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := other.Register(ctx)
	if !errors.Is(err, ErrDuplicateRunner) || !strings.Contains(err.Error(), first.r.cfg.Instance) {
		t.Fatalf("other host: %v", err)
	}
}

func TestRunner_takes_over_the_fleet_entry_of_a_dead_runner(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	fleet, _ := js.KeyValue(context.Background(), events.BucketFleet)
	dead := events.RunnerStatus{Runner: "gpu-08", Host: "gone-host", Instance: "gone-1-aaa", PID: 1, UpdatedAt: time.Now()}
	if err := natsx.PutJSON(context.Background(), fleet, "gpu-08", dead); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, js, "gpu-08", "new-host")
	start := time.Now()
	if err := r.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err := fleet.Get(context.Background(), "gpu-08")
	if err != nil {
		t.Fatal(err)
	}
	var st events.RunnerStatus
	_ = json.Unmarshal(e.Value(), &st)
	if st.Instance != r.cfg.Instance {
		t.Fatalf("fleet entry %+v", st)
	}
	t.Logf("took over after %s", time.Since(start).Round(time.Millisecond))
}

func TestRunner_stops_when_another_process_takes_its_id(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	r := newTestRunner(t, js, "gpu-09", "h")
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	fleet, _ := js.KeyValue(context.Background(), events.BucketFleet)
	waitFor(t, 5*time.Second, "registration", func() bool { _, err := fleet.Get(context.Background(), "gpu-09"); return err == nil })
	usurper := events.RunnerStatus{Runner: "gpu-09", Host: "h2", Instance: "h2-1-bbb", PID: 1}
	if err := natsx.PutJSON(context.Background(), fleet, "gpu-09", usurper); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrDuplicateRunner) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the runner kept running under a taken id")
	}
}
