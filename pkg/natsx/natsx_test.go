package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 15*time.Second, what, cond)
}

// eventuallyWithin is eventually with its own deadline, for what a loaded
// machine can make slow (a cluster electing leaders).
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func proposal(study string, trial int) events.CandidateProposed {
	return events.CandidateProposed{
		Envelope: events.NewEnvelope(events.TypeCandidateProposed, study, trial, time.Now()),
		Params:   events.Params{"tp_size": 1},
		Sampler:  "random",
	}
}

func TestPublishOnceRefusesASecondOutcome(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	res := events.TrialResult{Envelope: events.NewEnvelope(events.TypeTrialResult, "s1", 3, time.Now()), State: events.StateComplete}
	if err := natsx.PublishOnce(ctx, js, events.OutcomeSubject("s1", 3), res); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	// A rerun minutes later carries another id; the subject still refuses it.
	res.ID = "another-run"
	err := natsx.PublishOnce(ctx, js, events.OutcomeSubject("s1", 3), res)
	if !errors.Is(err, natsx.ErrAlreadyRecorded) {
		t.Fatalf("second publish: got %v, want ErrAlreadyRecorded", err)
	}
	data, ok, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("s1", 3))
	if err != nil || !ok || len(data) == 0 {
		t.Fatalf("LastOnSubject: %v %v", ok, err)
	}
	_, ok, err = natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("s1", 4))
	if err != nil || ok {
		t.Fatalf("LastOnSubject of an empty subject: ok=%v err=%v", ok, err)
	}
}

func TestConsumeAcksRetriesAndDeadLetters(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamCandidates, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second, MaxDeliver: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	for trial := range 3 {
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject("s1", trial), proposal("s1", trial)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, events.CandidateSubject("s1", 9), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	var handled sync.Map
	var attempts1 atomic.Int32
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- natsx.Consume(runCtx, js, cons, natsx.ConsumeOptions{Workers: 2, MaxDeliver: 3, Logger: zerolog.Nop(), OutcomeOnDeadLetter: true},
			natsx.Typed(events.TypeCandidateProposed, func(_ context.Context, ev events.CandidateProposed, _ natsx.Meta) error {
				switch ev.Trial {
				case 1: // transient twice, then fine
					if attempts1.Add(1) < 3 {
						return natsx.RetryAfter(fmt.Errorf("not yet"), 10*time.Millisecond)
					}
				case 2:
					return natsx.Permanent(fmt.Errorf("never valid"))
				}
				handled.Store(ev.Trial, true)
				return nil
			}))
	}()
	dlq, err := js.Stream(ctx, events.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "trials 0 and 1 handled and two dead letters", func() bool {
		_, ok0 := handled.Load(0)
		_, ok1 := handled.Load(1)
		info, err := dlq.Info(ctx)
		return ok0 && ok1 && err == nil && info.State.Msgs == 2
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	// Both dead-lettered trials got a FAILED outcome, so no study waits for them.
	for _, trial := range []int{2, 9} {
		data, ok, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("s1", trial))
		if err != nil || !ok {
			t.Fatalf("trial %d: no outcome (%v)", trial, err)
		}
		res, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
		if err != nil || res.State != events.StateFailed || res.FailureClass != events.FailDeadLetter {
			t.Fatalf("trial %d outcome = %+v, %v", trial, res, err)
		}
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Fatalf("left pending=%d ack_pending=%d", ci.NumPending, ci.NumAckPending)
	}
}

// TestUpdateJSONUnderConcurrentWriters has 32 writers race on one key: on
// a loaded host one of them loses dozens of rounds in a row, and none may
// give up or lose an increment.
func TestUpdateJSONUnderConcurrentWriters(t *testing.T) {
	const writers, each = 32, 10
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	type counter struct{ N int }
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := natsx.UpdateJSON(ctx, kv, "c", func(c *counter, _ bool) error { c.N++; return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got, _, err := natsx.GetJSON[counter](ctx, kv, "c")
	if err != nil || got.N != writers*each {
		t.Fatalf("counter = %d (%v), want %d", got.N, err, writers*each)
	}
}

func TestTailReplaysThenFollows(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	for trial := range 5 {
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject("a", trial), proposal("a", trial)); err != nil {
			t.Fatal(err)
		}
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject("b", trial), proposal("b", trial)); err != nil {
			t.Fatal(err)
		}
	}
	var n atomic.Int32
	var caughtAt atomic.Int32
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- natsx.Tail(tctx, js, events.StreamCandidates, events.CandidatesOfStudy("a"),
			func([]byte, natsx.Meta) error { n.Add(1); return nil },
			func() { caughtAt.Store(n.Load()) })
	}()
	eventually(t, "caught up", func() bool { return caughtAt.Load() == 5 })
	if _, err := natsx.Publish(ctx, js, events.CandidateSubject("a", 5), proposal("a", 5)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "live message", func() bool { return n.Load() == 6 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var m int
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("b"), func([]byte, natsx.Meta) error { m++; return nil }); err != nil || m != 5 {
		t.Fatalf("Replay: %d messages, %v", m, err)
	}
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("empty"), func([]byte, natsx.Meta) error { return nil }); err != nil {
		t.Fatalf("Replay of nothing: %v", err)
	}
	if err := natsx.PurgeStudy(ctx, js, "b"); err != nil {
		t.Fatal(err)
	}
	m = 0
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("b"), func([]byte, natsx.Meta) error { m++; return nil }); err != nil || m != 0 {
		t.Fatalf("after purge: %d messages, %v", m, err)
	}
}

func TestRestartKeepsStreams(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if _, err := natsx.Publish(ctx, js, events.CandidateSubject("a", 0), proposal("a", 0)); err != nil {
		t.Fatal(err)
	}
	srv = natstest.RestartServer(t, srv)
	_, js = natstest.Connect(t, srv)
	var m int
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("a"), func([]byte, natsx.Meta) error { m++; return nil }); err != nil || m != 1 {
		t.Fatalf("after restart: %d messages, %v", m, err)
	}
}

func TestHealthFollowsTheConnection(t *testing.T) {
	srv := natstest.RunServer(t)
	h := natsx.NewHealth()
	if h.Healthy() {
		t.Fatal("healthy before any connection")
	}
	nc, _, err := natsx.Connect(ctxT(t), natsx.ConnConfig{URL: srv.ClientURL(), Health: h}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !h.Healthy() {
		t.Fatal("not healthy while connected")
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	eventually(t, "unhealthy after the server left", func() bool { return !h.Healthy() })
}

// A tail follows the stream across a restart of the server (the ordered
// consumer lives in the server's memory and is gone): every message is
// delivered once, in order, and Tail keeps following until its context ends.
func TestTailFollowsAcrossAServerRestart(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	publish := func(trial int) {
		t.Helper()
		for {
			_, err := natsx.Publish(ctx, js, events.CandidateSubject("a", trial), proposal("a", trial))
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // reconnecting
		}
	}
	for trial := range 3 {
		publish(trial)
	}
	var mu sync.Mutex
	var seqs []uint64
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- natsx.Tail(tctx, js, events.StreamCandidates, events.CandidatesOfStudy("a"),
			func(_ []byte, m natsx.Meta) error {
				mu.Lock()
				seqs = append(seqs, m.StreamSeq)
				mu.Unlock()
				return nil
			}, nil)
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
	eventually(t, "the stored messages", func() bool { return count() == 3 })
	for round := range 2 {
		srv = natstest.RestartServer(t, srv)
		for trial := 3 + 2*round; trial < 5+2*round; trial++ {
			publish(trial)
		}
		want := 5 + 2*round
		eventually(t, fmt.Sprintf("%d messages after restart %d", want, round+1), func() bool { return count() >= want })
		select {
		case err := <-done:
			t.Fatalf("Tail returned before its context ended: %v", err)
		default:
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("stream sequences delivered out of order or twice: %v", seqs)
		}
	}
	if len(seqs) != 7 {
		t.Fatalf("delivered %d messages (%v), want 7", len(seqs), seqs)
	}
}
