package sampler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/services/sampler"
)

// Two samplers on one study: the second stands by while the first owns it
// and returns nil when the first completes it; the budget is met exactly
// and every trial number is proposed once.
func TestSecondSamplerStandsByAndReturnsWhenTheStudyCompletes(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials = "owned", 10
	f := startFleet(t, js, name)
	cfg := config(srv, testSpec(name, nTrials))
	cfg.MaxInFlight = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	standby := make(chan events.Lease, 1)
	f.hold(2) // trials from 2 on wait, so the first sampler is mid-study
	first := make(chan error, 1)
	go func() { first <- runSampler(t, ctx, cfg) }()
	waitFor(t, 10*time.Second, func() bool { return f.heldCount() == 2 })
	second := cfg
	second.OnStandby = func(owner events.Lease) { standby <- owner }
	secondDone := make(chan error, 1)
	go func() { secondDone <- runSampler(t, ctx, second) }()
	select {
	case owner := <-standby:
		if owner.Kind != events.LeaseSampler || owner.Instance == "" {
			t.Fatalf("owner %+v", owner)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second sampler never stood by")
	}
	f.resume(ctx)
	if err := <-first; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := <-secondDone; err != nil {
		t.Fatalf("second Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials, 2) // also fails on a trial proposed twice
}

// The owner died (its lease is no longer renewed): a standing-by sampler
// takes the study over once the lease is gone, and completes it.
func TestStandbySamplerTakesOverWhenTheOwnerIsGone(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials = "orphan", 6
	f := startFleet(t, js, name)
	leases, err := natsx.OpenLeases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := leases.Acquire(context.Background(), events.StudyLeaseKey(name),
		events.Lease{Kind: events.LeaseSampler, Holder: "sampler", Instance: "dead-1-aaa", Token: "t", Study: name})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(srv, testSpec(name, nTrials))
	cfg.MaxInFlight = 2
	standby := make(chan struct{}, 1)
	cfg.OnStandby = func(events.Lease) { standby <- struct{}{} }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runSampler(t, ctx, cfg) }()
	select {
	case <-standby:
	case <-time.After(10 * time.Second):
		t.Fatal("the sampler did not stand by for the live-looking owner")
	}
	if seen, _, _, _, _ := f.snapshot(); len(seen) != 0 {
		t.Fatalf("%d trials proposed while another sampler owned the study", len(seen))
	}
	// The lease expires (released here rather than waiting its 30 s TTL).
	if err := leases.Release(context.Background(), events.StudyLeaseKey(name), rev); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials, 2)
}

// --no-load on a study another sampler owns is refused: it would delete the
// study under that process.
func TestFreshStartOfAnOwnedStudyIsRefused(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	leases, err := natsx.OpenLeases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Acquire(context.Background(), events.StudyLeaseKey("busy"),
		events.Lease{Kind: events.LeaseSampler, Holder: "sampler", Instance: "other-1-bbb", Host: "h", Token: "t", Study: "busy"}); err != nil {
		t.Fatal(err)
	}
	cfg := config(srv, testSpec("busy", 4))
	cfg.Fresh = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = runSampler(t, ctx, cfg)
	if !errors.Is(err, sampler.ErrStudyOwned) || !strings.Contains(err.Error(), "other-1-bbb") {
		t.Fatalf("Run = %v, want ErrStudyOwned naming the owner", err)
	}
}
