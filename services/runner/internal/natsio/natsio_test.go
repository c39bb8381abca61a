package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// fakeExec is a function-field TrialRunner.
type fakeExec struct {
	RunFn func(ctx context.Context, q events.TrialQueued, gpus []int, progress func(string, string)) (events.TrialResult, error)
	calls atomic.Int64
}

func (f *fakeExec) Run(ctx context.Context, q events.TrialQueued, gpus []int, progress func(string, string)) (events.TrialResult, error) {
	f.calls.Add(1)
	return f.RunFn(ctx, q, gpus, progress)
}

func completeResult(q events.TrialQueued, gpus []int) events.TrialResult {
	return events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, q.Study, q.Trial, time.Now()),
		Params:   q.Params, State: events.StateComplete, GPUs: gpus, Backend: "sim",
		Metrics: map[string]float64{"mean_ttft_ms": 10}, Units: map[string]string{"mean_ttft_ms": "ms"},
	}
}

func testGPUs(n int) []events.GPU {
	out := make([]events.GPU, n)
	for i := range out {
		out[i] = events.GPU{Index: i, Name: "sim", Simulated: true}
	}
	return out
}

type runnerHandle struct {
	r      *Runner
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startRunner(t *testing.T, js jetstream.JetStream, id string, gpus int, ackWait time.Duration, exec TrialRunner) *runnerHandle {
	t.Helper()
	r, err := New(js, Config{
		RunnerID: id, Backend: "sim", GPUs: testGPUs(gpus), AckWait: ackWait, MaxDeliver: 5,
		HeartbeatEvery: 200 * time.Millisecond, PollEvery: 100 * time.Millisecond,
		HandBackDelay: 100 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	}, exec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	h := &runnerHandle{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *runnerHandle) stop(t *testing.T) {
	t.Helper()
	h.once.Do(func() {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("runner did not stop")
		}
	})
}

func queue(t *testing.T, js jetstream.JetStream, study string, trial, gpus int) {
	t.Helper()
	q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, study, trial, time.Now()), GPUs: gpus,
		Params: events.Params{"tp_size": float64(gpus)}}
	if _, err := natsx.Publish(context.Background(), js, events.TrialSubject(study, gpus, trial), q); err != nil {
		t.Fatal(err)
	}
}

func outcomes(t *testing.T, js jetstream.JetStream, study string) []events.TrialResult {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, events.StreamOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.OutcomesOfStudy(study)))
	if err != nil {
		t.Fatal(err)
	}
	var out []events.TrialResult
	for subj := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		var r events.TrialResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	// The server counts messages and lists subjects at slightly different
	// moments while runners publish, so one more subject than messages is a
	// result recorded in between; more messages than subjects is a duplicate.
	if n := int(info.State.Msgs); n > len(out) {
		t.Fatalf("%d outcome messages on %d subjects: a trial was recorded twice", n, len(out))
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestRunner_runs_a_trial_records_one_result_and_acks(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	var mu sync.Mutex
	var gotGPUs []int
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, progress func(string, string)) (events.TrialResult, error) {
		progress(events.PhaseLaunching, "")
		mu.Lock()
		gotGPUs = gpus
		mu.Unlock()
		return completeResult(q, gpus), nil
	}}
	h := startRunner(t, js, "r1", 2, 5*time.Second, exec)
	queue(t, js, "s1", 0, 2)
	waitFor(t, 5*time.Second, "the result", func() bool { return len(outcomes(t, js, "s1")) == 1 })
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	mu.Lock()
	if len(gotGPUs) != 2 {
		t.Fatalf("trial got GPUs %v, want 2", gotGPUs)
	}
	mu.Unlock()
	if streamMsgs(t, js, events.StreamProgress) < 2 {
		t.Fatal("no progress events (claimed, launching)")
	}
	// The fleet entry is there while the runner lives and gone after it stops.
	kv, _ := js.KeyValue(context.Background(), events.BucketFleet)
	st, _, err := natsx.GetJSON[events.RunnerStatus](context.Background(), kv, "r1")
	if err != nil || st.Runner != "r1" || len(st.GPUs) != 2 {
		t.Fatalf("fleet entry %+v, %v", st, err)
	}
	h.stop(t)
	if _, err := kv.Get(context.Background(), "r1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("fleet entry after stop: %v", err)
	}
}

func TestRunner_malformed_trial_is_dead_lettered_and_terminated(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	exec := &fakeExec{RunFn: func(context.Context, events.TrialQueued, []int, func(string, string)) (events.TrialResult, error) {
		return events.TrialResult{}, errors.New("must not run")
	}}
	startRunner(t, js, "r1", 1, 5*time.Second, exec)
	if _, err := js.Publish(context.Background(), events.TrialSubject("s1", 1, 3), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the dead letter", func() bool { return streamMsgs(t, js, events.StreamDeadLetters) == 1 })
	waitFor(t, 5*time.Second, "the term", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	if exec.calls.Load() != 0 {
		t.Fatal("a malformed trial was run")
	}
	s, _ := js.Stream(context.Background(), events.StreamDeadLetters)
	m, err := s.GetLastMsgForSubject(context.Background(), events.DeadLetterSubject(events.StreamTrials))
	if err != nil {
		t.Fatal(err)
	}
	var dl events.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil || string(dl.Data) != "{not json" || dl.Reason == "" || dl.Trial != 3 {
		t.Fatalf("dead letter %+v (%v)", dl, err)
	}
}

func TestRunner_killed_mid_trial_second_runner_completes_it_once(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	// Runner A has its own connection so that "killing" it (closing the
	// connection: no more heartbeats, no nak) leaves the others alone.
	ncA, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	jsA, _ := jetstream.New(ncA)
	started := make(chan struct{})
	var once sync.Once
	execA := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return events.TrialResult{}, ctx.Err()
	}}
	a := startRunner(t, jsA, "ra", 1, time.Second, execA)
	queue(t, js, "s1", 7, 1)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("runner A never started the trial")
	}
	ncA.Close() // the runner dies
	a.stop(t)

	execB := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "rb", 1, time.Second, execB)
	waitFor(t, 10*time.Second, "runner B's result", func() bool { return len(outcomes(t, js, "s1")) == 1 })
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	if got := outcomes(t, js, "s1"); got[0].Trial != 7 || got[0].State != events.StateComplete {
		t.Fatalf("outcome %+v", got[0])
	}
	if execB.calls.Load() != 1 {
		t.Fatalf("runner B ran the trial %d times", execB.calls.Load())
	}
}

func TestRunner_redelivery_with_recorded_outcome_is_acked_without_running(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, "s1", 4, time.Now()), GPUs: 1}
	if err := natsx.PublishOnce(context.Background(), js, events.OutcomeSubject("s1", 4), completeResult(q, []int{0})); err != nil {
		t.Fatal(err)
	}
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "r1", 1, 5*time.Second, exec)
	queue(t, js, "s1", 4, 1)
	waitFor(t, 5*time.Second, "the ack", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	if exec.calls.Load() != 0 {
		t.Fatal("a trial with an outcome was run again")
	}
	if n := len(outcomes(t, js, "s1")); n != 1 {
		t.Fatalf("%d outcomes", n)
	}
}

func TestRunner_shutdown_hands_trial_back(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	started := make(chan struct{})
	var once sync.Once
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return events.TrialResult{}, ctx.Err()
	}}
	// AckWait is long: only a nak can make the trial available again quickly.
	a := startRunner(t, js, "ra", 1, 30*time.Second, exec)
	queue(t, js, "s1", 1, 1)
	<-started
	a.stop(t)
	execB := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "rb", 1, 30*time.Second, execB)
	waitFor(t, 5*time.Second, "the handed-back trial's result", func() bool { return len(outcomes(t, js, "s1")) == 1 })
}

func TestRunner_packs_trials_on_disjoint_GPUs(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	var mu sync.Mutex
	inUse := map[int]bool{}
	var overlap atomic.Bool
	var maxBusy, busy int
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		mu.Lock()
		for _, g := range gpus {
			if inUse[g] {
				overlap.Store(true)
			}
			inUse[g] = true
		}
		busy += len(gpus)
		maxBusy = max(maxBusy, busy)
		mu.Unlock()
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		for _, g := range gpus {
			delete(inUse, g)
		}
		busy -= len(gpus)
		mu.Unlock()
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "r1", 4, 5*time.Second, exec)
	for i, n := range []int{1, 2, 1, 4, 2, 1, 1} {
		queue(t, js, "s1", i, n)
	}
	waitFor(t, 15*time.Second, "all results", func() bool { return len(outcomes(t, js, "s1")) == 7 })
	if overlap.Load() {
		t.Fatal("a GPU was given to two trials at once")
	}
	if maxBusy < 3 {
		t.Fatalf("at most %d GPUs busy at once: trials were not packed", maxBusy)
	}
}
