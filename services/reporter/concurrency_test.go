package reporter_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
)

// Two reporters share the durable consumer, so each folds about half of
// the outcomes; the stored front must still be that of every outcome in
// the stream (issue 10: "it counts 16 benchmarked trials; the stream holds
// 32"), while outcomes keep arriving and after one reporter restarts.
func TestTwoReporters_store_the_front_of_every_outcome(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := study.Default()
	spec.StudyName = "s1"
	specJSON, err := spec.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	studies, _ := js.KeyValue(ctx, events.BucketStudies)
	if err := natsx.PutJSON(ctx, studies, "s1", events.StudyState{Study: "s1", Spec: specJSON, NTrials: 64, Status: events.StudyRunning, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	startReporter := func(name string) context.CancelFunc {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		cfg := reporter.Config{NATS: natsx.ConnConfig{URL: srv.ClientURL(), Name: name}, Quiet: true}
		go func() {
			done <- reporter.Run(rctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		}()
		var stopped bool
		stopFn := func() {
			if stopped {
				return
			}
			stopped = true
			stop()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		t.Cleanup(stopFn)
		return stopFn
	}
	stopA := startReporter("reporter-a")
	startReporter("reporter-b")

	rng := rand.New(rand.NewPCG(1, 2))
	const n = 64
	for i := range n {
		if i == n/2 {
			// A restart halfway: the other keeps going, then A comes back.
			stopA()
			startReporter("reporter-a2")
		}
		ev := result(i, 10+rng.Float64()*90, 500+rng.Float64()*2000)
		if err := natsx.PublishOnce(ctx, js, events.OutcomeSubject("s1", i), ev); err != nil {
			t.Fatal(err)
		}
		// One at a time, as a study records them: each reporter then folds
		// only its share live (a rebuild at its first outcome sees one).
		waitIdle(t, ctx, js)
	}
	want, err := reporter.ReadResults(ctx, js, "s1") // rebuilt from the whole stream
	if err != nil {
		t.Fatal(err)
	}
	if want.Counts.Outcomes != n {
		t.Fatalf("the stream holds %d outcomes", want.Counts.Outcomes)
	}
	waitIdle(t, ctx, js)
	got, err := reporter.ReadFront(ctx, js, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Counts.Outcomes != n || members(got) != members(want.FrontDoc) || got.NTrials != n {
		t.Fatalf("stored front %s (%d outcomes, %d benchmarked), front of the stream %s (%d)",
			members(got), got.Counts.Outcomes, got.NTrials, members(want.FrontDoc), n)
	}
}

// waitIdle polls until the reporters' consumer has every outcome acked.
func waitIdle(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := js.Consumer(ctx, events.StreamOutcomes, events.DurableReporter)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the reporters did not fold every outcome")
		}
		time.Sleep(25 * time.Millisecond)
	}
}
