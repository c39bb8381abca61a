package natsio

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// TestWatchMaxDeliveries_dead_letters_an_exhausted_trial: a trial claimed
// twice by "runners" that died (never acked, AckWait expired) exhausts
// MaxDeliver; the watcher records a FAILED dead-letter outcome for it, copies
// it to the DLQ and removes it from the work queue.
func TestWatchMaxDeliveries_dead_letters_an_exhausted_trial(t *testing.T) {
	// As provisioned now (its subject "...MAX_DELIVERIES.SGTUNE_>" is no
	// wildcard: the live fallback), and with the stream capturing them.
	t.Run("live", func(t *testing.T) { testMaxDeliveries(t, false) })
	t.Run("durable", func(t *testing.T) { testMaxDeliveries(t, true) })
}

func testMaxDeliveries(t *testing.T, captureAdvisories bool) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	if !captureAdvisories {
		// An older topology whose advisory stream captured nothing: the watcher
		// falls back to a live subscription.
		st, err := js.Stream(ctx, natsx.StreamAdvisories)
		if err != nil {
			t.Fatal(err)
		}
		sc := st.CachedInfo().Config
		sc.Subjects = []string{"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.*.*"}
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTrials, ConsumerConfig(1, time.Second, 2, 8))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- WatchMaxDeliveries(ctx, js, zerolog.New(zerolog.NewTestWriter(t))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchMaxDeliveries: %v", err)
		}
	}()

	queue(t, js, "adv", 3, 1)
	for i := range 2 { // two deliveries that die: never settled
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("delivery %d: got %d messages", i+1, n)
		}
	}
	// The server notices the exhaustion when it would redeliver, i.e. while
	// a pull request waits: runners keep pulling, and so does this one.
	pulls, stopPulls := context.WithCancel(ctx)
	defer stopPulls()
	go func() {
		for pulls.Err() == nil {
			b, err := cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				continue
			}
			for range b.Messages() {
				t.Error("a third delivery despite MaxDeliver 2")
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("advisories stored: %d", streamMsgs(t, js, natsx.StreamAdvisories))
		}
		if captureAdvisories && streamMsgs(t, js, natsx.StreamAdvisories) == 0 {
			t.Error("the advisory was not stored")
		}
	})
	var res events.TrialResult
	waitFor(t, 15*time.Second, "the dead-letter outcome", func() bool {
		data, ok, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("adv", 3))
		return err == nil && ok && json.Unmarshal(data, &res) == nil
	})
	if res.State != events.StateFailed || res.FailureClass != events.FailDeadLetter {
		t.Fatalf("outcome %+v", res)
	}
	waitFor(t, 5*time.Second, "the trial removed from the queue", func() bool { return streamMsgs(t, js, events.StreamTrials) == 0 })
	if streamMsgs(t, js, events.StreamDeadLetters) != 1 {
		t.Fatal("no dead letter")
	}
}

func TestReconcileConsumer_keeps_fleet_settings_and_never_lowers_max_ack_pending(t *testing.T) {
	t.Parallel()
	have := ConsumerConfig(2, 60*time.Second, 3, 128)
	got := ReconcileConsumer(have, ConsumerConfig(2, 30*time.Second, 5, 64))
	if got.AckWait != 60*time.Second || got.MaxDeliver != 3 || got.MaxAckPending != 128 {
		t.Fatalf("got %+v", got)
	}
	got = ReconcileConsumer(have, ConsumerConfig(2, 30*time.Second, 5, 256))
	if got.MaxAckPending != 256 {
		t.Fatalf("MaxAckPending = %d, want raised to 256", got.MaxAckPending)
	}
}

// Two runners configured differently end with one consumer configuration:
// the first runner's AckWait and MaxDeliver, the larger MaxAckPending, and
// the second runner heartbeats within the AckWait in force.
func TestEnsureConsumers_consistent_across_runners(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	mk := func(id string, ackWait time.Duration, maxDeliver, maxAckPending int) *Runner {
		r, err := New(js, Config{RunnerID: id, GPUs: testGPUs(1), AckWait: ackWait, MaxDeliver: maxDeliver,
			MaxAckPending: maxAckPending, Logger: zerolog.New(zerolog.NewTestWriter(t))}, &fakeExec{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.EnsureConsumers(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	mk("a", 20*time.Second, 4, 16)
	b := mk("b", 60*time.Second, 9, 8)
	info, err := b.cons[1].Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.AckWait != 20*time.Second || c.MaxDeliver != 4 || c.MaxAckPending != 16 {
		t.Fatalf("consumer config after runner b: ack wait %v, max deliver %d, max ack pending %d", c.AckWait, c.MaxDeliver, c.MaxAckPending)
	}
	if b.cfg.AckWait != 20*time.Second {
		t.Fatalf("runner b heartbeats against %v, want the 20s in force", b.cfg.AckWait)
	}
}

func TestSubjectCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		givenPattern string
		expected     bool
	}{
		{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SGTUNE_TRIALS.*", true},
		{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*", true},
		{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", true},
		{"$JS.EVENT.ADVISORY.>", true},
		{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SGTUNE_>", false}, // not a wildcard: ">" is a whole token
		{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SGTUNE_TRIALS.runners-g1", false},
		{"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", false},
	}
	for _, tt := range tests {
		if got := subjectCovers(tt.givenPattern, AdvisoryFilter); got != tt.expected {
			t.Errorf("subjectCovers(%q) = %v, want %v", tt.givenPattern, got, tt.expected)
		}
	}
}
