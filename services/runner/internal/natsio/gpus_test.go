package natsio

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func realGPUs(indices ...int) []events.GPU {
	out := make([]events.GPU, len(indices))
	for i, idx := range indices {
		out[i] = events.GPU{Index: idx, Name: "NVIDIA H100 80GB HBM3", UUID: fmt.Sprintf("GPU-0000000%d-fake", idx)}
	}
	return out
}

func newGPURunner(t *testing.T, js jetstream.JetStream, id string, gpus []events.GPU, health GPUHealth, exec TrialRunner) *Runner {
	t.Helper()
	if exec == nil {
		exec = &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
			return completeResult(q, gpus), nil
		}}
	}
	r, err := New(js, Config{
		RunnerID: id, Host: "box", Backend: "sim", GPUs: gpus, AckWait: 3 * time.Second, MaxDeliver: 5,
		HeartbeatEvery: 200 * time.Millisecond, PollEvery: 50 * time.Millisecond, HandBackDelay: 100 * time.Millisecond,
		GPUHealth: health, DriverVersion: "550.54.15", CUDAVersion: "12.4",
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	}, exec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunner_GPUs_another_live_runner_holds_are_refused_naming_it(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	first := newGPURunner(t, js, "r0", realGPUs(0, 1), nil, nil)
	if err := first.Register(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		gpus      []events.GPU
		withError bool
	}{
		{"overlapping GPUs", realGPUs(1, 2), true},
		{"disjoint GPUs", realGPUs(2, 3), false},
		{"simulated GPUs are not checked", testGPUs(2), false},
	}
	for i, tt := range tests {
		r := newGPURunner(t, js, fmt.Sprintf("r%d", i+1), tt.gpus, nil, nil)
		err := r.Register(ctx)
		if tt.withError {
			if !errors.Is(err, ErrGPUsInUse) || !strings.Contains(err.Error(), "runner r0") || !strings.Contains(err.Error(), "GPU-00000001-fake") ||
				strings.Contains(err.Error(), "GPU-00000002-fake") {
				t.Fatalf("%s: err = %v, want ErrGPUsInUse naming r0 and GPU 1 only", tt.name, err)
			}
			fleet, _ := js.KeyValue(ctx, events.BucketFleet)
			if _, err := fleet.Get(ctx, r.cfg.RunnerID); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatalf("%s: the refused runner has a fleet entry (%v)", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}

	// A stale entry (its runner stopped heartbeating long ago) does not block.
	fleet, _ := js.KeyValue(ctx, events.BucketFleet)
	stale := events.RunnerStatus{Runner: "old", Host: "gone-container", Instance: "x", GPUs: realGPUs(5), UpdatedAt: time.Now().Add(-time.Minute)}
	if err := natsx.PutJSON(ctx, fleet, "old", stale); err != nil {
		t.Fatal(err)
	}
	if err := newGPURunner(t, js, "r9", realGPUs(5), nil, nil).Register(ctx); err != nil {
		t.Fatalf("stale entry: %v", err)
	}
}

func TestRunner_two_runners_registering_together_keep_one(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		a := newGPURunner(t, js, fmt.Sprintf("a%d", round), realGPUs(round), nil, nil)
		b := newGPURunner(t, js, fmt.Sprintf("b%d", round), realGPUs(round), nil, nil)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range []*Runner{a, b} {
			wg.Go(func() { errs[i] = r.Register(ctx) })
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if errors.Is(err, ErrGPUsInUse) {
				refused++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if refused != 1 {
			t.Fatalf("round %d: %d runners refused (%v), want exactly 1", round, refused, errs)
		}
	}
}

// fakeHealth is a GPUHealth the test sets.
type fakeHealth struct {
	mu     sync.Mutex
	q      []events.QuarantinedGPU
	paused string
}

func (f *fakeHealth) Quarantined() []events.QuarantinedGPU {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.q)
}

func (f *fakeHealth) Paused() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused
}

func (f *fakeHealth) set(paused string, q ...events.QuarantinedGPU) {
	f.mu.Lock()
	f.paused, f.q = paused, q
	f.mu.Unlock()
}

func TestRunner_quarantined_GPUs_are_not_offered_and_a_pause_claims_nothing(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	health := &fakeHealth{}
	// A trial on GPU 0 leaves it quarantined before its runner releases it.
	var mu sync.Mutex
	var used [][]int
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		mu.Lock()
		used = append(used, gpus)
		mu.Unlock()
		if q.Trial == 1 {
			health.set("", events.QuarantinedGPU{Index: gpus[0], UUID: "GPU-0", Reason: "40 GiB still used"})
		}
		return completeResult(q, gpus), nil
	}}
	r := newGPURunner(t, js, "q", realGPUs(0, 1), health, exec)
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	queue(t, js, "s", 1, 1)
	waitFor(t, 5*time.Second, "trial 1", func() bool { return len(outcomes(t, js, "s")) == 1 })
	for n := 2; n <= 4; n++ {
		queue(t, js, "s", n, 1)
	}
	waitFor(t, 5*time.Second, "trials 2-4", func() bool { return len(outcomes(t, js, "s")) == 4 })
	mu.Lock()
	for _, g := range used[1:] {
		if !slices.Equal(g, []int{1}) {
			t.Errorf("a trial after the quarantine ran on %v, want [1]", g)
		}
	}
	mu.Unlock()
	fleet, _ := js.KeyValue(ctx, events.BucketFleet)
	waitFor(t, 5*time.Second, "the quarantine in the fleet entry", func() bool {
		st, _, err := natsx.GetJSON[events.RunnerStatus](ctx, fleet, "q")
		return err == nil && len(st.Quarantined) == 1 && st.Quarantined[0].Reason == "40 GiB still used" &&
			slices.Equal(st.FreeGPUs, []int{1}) && st.DriverVersion == "550.54.15"
	})
	// A 2-GPU trial cannot run while GPU 0 is out; released, it runs.
	queue(t, js, "s", 5, 2)
	health.set("")
	waitFor(t, 5*time.Second, "the 2-GPU trial after the release", func() bool { return len(outcomes(t, js, "s")) == 5 })

	// NVML gone: nothing is claimed, and the fleet entry says why.
	health.set("NVML cannot read the GPUs")
	waitFor(t, 5*time.Second, "the pause in the fleet entry", func() bool {
		st, _, err := natsx.GetJSON[events.RunnerStatus](ctx, fleet, "q")
		return err == nil && st.Paused != ""
	})
	before := exec.calls.Load()
	queue(t, js, "s", 6, 1)
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if exec.calls.Load() != before {
			t.Fatal("a trial was claimed while paused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	health.set("")
	waitFor(t, 5*time.Second, "the trial after the pause", func() bool { return len(outcomes(t, js, "s")) == 6 })
}
