package natsio

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestFleet_Wait(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var runners []events.RunnerStatus
	f := NewFleet(func(context.Context) ([]events.RunnerStatus, error) {
		mu.Lock()
		defer mu.Unlock()
		return runners, nil
	}, time.Hour, time.Now)

	// No runner within maxWait: ErrNoLiveRunner, not an empty fleet.
	if hosts, err := f.Wait(context.Background(), 50*time.Millisecond, 10*time.Millisecond); !errors.Is(err, ErrNoLiveRunner) || hosts != nil {
		t.Fatalf("got %v, %v; want ErrNoLiveRunner", hosts, err)
	}
	// A runner that appears while waiting is seen at a poll, long before
	// the refresh interval (an empty fleet is never cached).
	go func() {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		runners = []events.RunnerStatus{{Runner: "r1", GPUs: []events.GPU{{Name: "NVIDIA H100", ComputeCapability: "9.0"}}}}
		mu.Unlock()
	}()
	hosts, err := f.Wait(context.Background(), time.Minute, 20*time.Millisecond)
	if err != nil || len(hosts) != 1 || hosts[0].Name != "r1" {
		t.Fatalf("got %v, %v", hosts, err)
	}
	// A cancelled wait returns the context's error.
	empty := NewFleet(func(context.Context) ([]events.RunnerStatus, error) { return nil, nil }, time.Second, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := empty.Wait(ctx, time.Minute, 10*time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestValidator_waits_for_the_fleet_without_spending_deliveries runs the
// handler in the shared consume loop on a consumer with a 1 s AckWait: a
// candidate of a hardware study waits three AckWaits for the first runner,
// is never redelivered meanwhile, and is then judged against that runner.
func TestValidator_waits_for_the_fleet_without_spending_deliveries(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits a few seconds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := connect(t)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	claims, err := EnsureKVClaims(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	studiesKV, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	fleetKV, err := natsx.KV(ctx, js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	cc := ConsumerConfig()
	cc.AckWait = time.Second
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamCandidates, cc)
	if err != nil {
		t.Fatal(err)
	}
	var listed atomic.Int32
	fleet := NewFleet(func(ctx context.Context) ([]events.RunnerStatus, error) {
		listed.Add(1)
		return natsx.LiveRunners(ctx, js)
	}, 5*time.Second, time.Now)
	v := NewValidator(js, NewStudies(studiesKV), fleet, claims, Options{
		FleetWait: time.Minute, FleetPoll: 50 * time.Millisecond, Logger: zerolog.New(t.Output()),
	})
	done := make(chan error, 1)
	go func() {
		done <- natsx.Consume(ctx, js, cons, natsx.ConsumeOptions{
			Workers: 2, MaxDeliver: MaxDeliver, InProgressEvery: 300 * time.Millisecond, Logger: zerolog.New(t.Output()),
		}, v.Handler())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	hw := study.Default()
	hw.StudyName = "hw"
	hw.Rules.Sets = []string{"seed", "sglang", "hardware"}
	seedOnly := study.Default()
	seedOnly.StudyName = "seedonly"
	seedOnly.Rules.Sets = []string{"seed"} // no hardware rules: judged without a fleet
	for _, s := range []study.Spec{hw, seedOnly} {
		raw, err := s.ToJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := natsx.PutJSON(ctx, studiesKV, s.StudyName, events.StudyState{Study: s.StudyName, Spec: raw, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	propose := func(name string, trial int, p events.Params) {
		ev := events.CandidateProposed{Envelope: events.NewEnvelope(events.TypeCandidateProposed, name, trial, time.Now()), Params: p, Sampler: "random"}
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject(name, trial), ev); err != nil {
			t.Fatal(err)
		}
	}
	found := func(stream, subject string) bool {
		_, ok, err := natsx.LastOnSubject(ctx, js, stream, subject)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	propose("hw", 0, events.Params{"tp_size": 2})
	// The default study (rules.sets: [seed]) never waits for the fleet.
	propose("seedonly", 0, events.Params{"tp_size": 1})
	waitFor("the seed-only trial", func() bool { return found(events.StreamTrials, events.TrialSubject("seedonly", 1, 0)) })

	time.Sleep(3 * cc.AckWait)
	if found(events.StreamTrials, events.TrialSubject("hw", 2, 0)) || found(events.StreamOutcomes, events.OutcomeSubject("hw", 0)) {
		t.Fatal("the hardware study's candidate was judged with no runner alive")
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 || info.NumRedelivered != 0 {
		t.Fatalf("waiting candidate: ack pending %d, redelivered %d; want 1 and 0 (InProgress keeps it)", info.NumAckPending, info.NumRedelivered)
	}
	if n := listed.Load(); n < 3 {
		t.Fatalf("the fleet was read %d times while waiting; want it polled", n)
	}

	gpu := events.GPU{Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80e9, ComputeCapability: "9.0"}
	if err := natsx.PutJSON(ctx, fleetKV, "r1", events.RunnerStatus{Runner: "r1", Host: "box", GPUs: []events.GPU{gpu, gpu}, Slots: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor("the hardware trial", func() bool { return found(events.StreamTrials, events.TrialSubject("hw", 2, 0)) })
	waitFor("the consumer to go idle", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if info, _ := cons.Info(ctx); info.Delivered.Consumer != 2 {
		t.Fatalf("%d deliveries for 2 candidates: the wait spent deliveries", info.Delivered.Consumer)
	}
}
