package validator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

func host(runner, name string, n int) events.RunnerStatus {
	st := events.RunnerStatus{Runner: runner, Host: name, Instance: runner + "-1", Slots: 1}
	for i := range n {
		st.GPUs = append(st.GPUs, events.GPU{Index: i, Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80 << 30, ComputeCapability: "9.0"})
	}
	return st
}

func putRunner(t *testing.T, h *harness, st events.RunnerStatus) {
	t.Helper()
	kv, err := natsx.KV(context.Background(), h.js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.PutJSON(context.Background(), kv, st.Runner, st); err != nil {
		t.Fatal(err)
	}
}

// Issue 10: two runners of 4 GPUs and trials allowed 8 (device_num 8): the
// 8-GPU trials sat in a queue no runner serves. They are rejected naming
// the live fleet, whatever the rule sets (here the seed's alone).
func TestRun_rejects_a_trial_no_live_runner_can_fit(t *testing.T) {
	h := startValidator(t)
	putRunner(t, h, host("r1", "box1", 4))
	putRunner(t, h, host("r2", "box2", 4))
	spec := study.Default()
	spec.StudyName = "fit"
	spec.Rules.Sets = []string{"seed"}
	h.putStudy(spec)
	h.propose("fit", 0, with(seedCandidate(), "tp_size", 8))
	h.propose("fit", 1, with(seedCandidate(), "tp_size", 4))
	r := h.rejection("fit", 0)
	if len(r.Rejections) != 1 || r.Rejections[0].Rule != "fleet.fits_a_runner" ||
		!strings.Contains(r.Rejections[0].Reason, "needs 8 GPUs") || !strings.Contains(r.Rejections[0].Reason, "r1@box1: 4 × NVIDIA H100") ||
		!strings.Contains(r.Rejections[0].Reason, "r2@box2: 4 ×") {
		t.Fatalf("rejection %+v", r.Rejections)
	}
	if q := h.queued("fit", 4, 1); q.GPUs != 4 {
		t.Fatalf("the 4-GPU trial was not queued: %+v", q)
	}
}

// The fleet shrinks after trials were queued: the only 8-GPU runner leaves.
// After NoRunnerWait the queued 8-GPU trial ends FAILED (no-runner) with the
// fleet named, and leaves the queue; one a runner holds the lease of stays.
func TestRun_fails_queued_trials_the_shrunk_fleet_cannot_run(t *testing.T) {
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	h := &harness{t: t, js: js, nc: nc}
	putRunner(t, h, host("big", "box8", 8))
	putRunner(t, h, host("small", "box2", 2))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- validator.Run(ctx, validator.Config{
			NATS: natsx.ConnConfig{URL: srv.ClientURL()}, Workers: 1, FleetRefresh: 100 * time.Millisecond,
			NoRunnerWait: 500 * time.Millisecond,
		}, zerolog.New(t.Output()).Level(zerolog.InfoLevel))
	}()
	t.Cleanup(func() { cancel(); <-done })
	queue := func(trial int) {
		q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, "shrink", trial, time.Now()), GPUs: 8,
			Params: events.Params{"tp_size": 8}}
		if _, err := natsx.Publish(context.Background(), js, events.TrialSubject("shrink", 8, trial), q); err != nil {
			t.Fatal(err)
		}
	}
	queue(3)
	queue(4)
	// Trial 4 has the lease of a live runner (it is running it): left alone.
	leases, err := natsx.OpenLeases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Acquire(context.Background(), events.TrialLeaseKey("shrink", 4), events.Lease{
		Kind: events.LeaseRunner, Holder: "small", Instance: "small-1", Token: "x", Study: "shrink", Trial: 4,
	}); err != nil {
		t.Fatal(err)
	}
	fleet, _ := natsx.KV(context.Background(), js, events.BucketFleet)
	if err := fleet.Delete(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
	data := h.last(events.StreamOutcomes, events.OutcomeSubject("shrink", 3))
	res, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != events.StateFailed || res.FailureClass != events.FailNoRunner ||
		!strings.Contains(res.Reason, "needing 8 GPUs") || !strings.Contains(res.Reason, "small@box2: 2 ×") {
		t.Fatalf("outcome %+v", res)
	}
	eventuallyTrue(t, "trial 3 to leave the queue", func() bool { return h.count(events.StreamTrials, events.TrialSubject("shrink", 8, 3)) == 0 })
	if n := h.count(events.StreamTrials, events.TrialSubject("shrink", 8, 4)); n != 1 {
		t.Fatalf("the leased trial 4 was removed (%d left)", n)
	}
	if _, found, _ := natsx.LastOnSubject(context.Background(), js, events.StreamOutcomes, events.OutcomeSubject("shrink", 4)); found {
		t.Fatal("the leased trial 4 got an outcome")
	}
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
