package natsio

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	return js
}

// TestClaims_contract runs one suite over every Claims implementation.
func TestClaims_contract(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) Claims{
		"memory": func(*testing.T) Claims { return NewMemoryClaims() },
		"kv": func(t *testing.T) Claims {
			c, err := EnsureKVClaims(context.Background(), connect(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := mk(t)
			ctx := context.Background()
			claim := func(study, inc, hash string, trial, want int) {
				t.Helper()
				got, err := c.Claim(ctx, study, inc, hash, trial)
				if err != nil || got != want {
					t.Fatalf("Claim(%s,%s,%s,%d) = %d, %v; want %d", study, inc, hash, trial, got, err, want)
				}
			}
			claim("s", "1", "h1", 4, 4)
			claim("s", "1", "h1", 4, 4) // redelivery: still the owner
			claim("s", "1", "h1", 9, 4) // duplicate
			claim("s", "1", "h2", 9, 9)
			claim("t", "1", "h1", 2, 2) // other study
			claim("s", "2", "h1", 7, 7) // same study name, new incarnation
		})
		t.Run(name+"/ConcurrentSafe", func(t *testing.T) {
			t.Parallel()
			c := mk(t)
			owners := make([]int, 8)
			var wg sync.WaitGroup
			for i := range owners {
				wg.Go(func() {
					o, err := c.Claim(context.Background(), "s", "0", "h", i)
					if err != nil {
						t.Error(err)
					}
					owners[i] = o
				})
			}
			wg.Wait()
			for _, o := range owners {
				if o != owners[0] {
					t.Fatalf("claims disagree: %v", owners)
				}
			}
		})
	}
}

func TestKVClaims_survive_a_restart(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	a, err := EnsureKVClaims(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, "s", "1", "h", 3); err != nil {
		t.Fatal(err)
	}
	b, err := EnsureKVClaims(ctx, js, 1) // a new validator process
	if err != nil {
		t.Fatal(err)
	}
	if o, err := b.Claim(ctx, "s", "1", "h", 8); err != nil || o != 3 {
		t.Fatalf("after restart: owner %d, %v; want 3", o, err)
	}
}

func TestStudies_Load(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := context.Background()
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStudies(kv)
	if _, err := s.Load(ctx, "nope"); !errors.Is(err, ErrStudyNotFound) {
		t.Fatalf("missing study: %v", err)
	}
	put := func(spec []byte, started time.Time) {
		t.Helper()
		if err := natsx.PutJSON(ctx, kv, "s", events.StudyState{Study: "s", Spec: spec, StartedAt: started}); err != nil {
			t.Fatal(err)
		}
	}
	put([]byte(`{"study_name": 3}`), time.Time{})
	if _, err := s.Load(ctx, "s"); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	spec := study.Default()
	raw, _ := spec.ToJSON()
	started := time.Unix(100, 5)
	put(raw, started)
	got, err := s.Load(ctx, "s")
	if err != nil || got.Spec.DeviceNum != 8 || got.Incarnation != "100000000005" {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	again, _ := s.Load(ctx, "s")
	if again.Spec != got.Spec {
		t.Fatal("unchanged revision re-parsed the spec")
	}
	put(raw, started) // status update: new revision, same spec
	if again, _ := s.Load(ctx, "s"); again.Spec != got.Spec {
		t.Fatal("unchanged spec bytes re-parsed the spec")
	}
	spec.DeviceNum = 4
	raw, _ = spec.ToJSON()
	put(raw, started)
	if changed, err := s.Load(ctx, "s"); err != nil || changed.Spec.DeviceNum != 4 {
		t.Fatalf("changed spec not picked up: %+v %v", changed, err)
	}
}

func TestFleet_caches_and_maps(t *testing.T) {
	t.Parallel()
	calls := 0
	now := time.Unix(0, 0)
	f := NewFleet(func(context.Context) ([]events.RunnerStatus, error) {
		calls++
		return []events.RunnerStatus{{Runner: "r1", Host: "box", GPUs: []events.GPU{
			{Name: "NVIDIA H100", MemoryTotalBytes: 80e9, ComputeCapability: "9.0"},
			{Name: "odd", ComputeCapability: "n/a"},
		}}}, nil
	}, 5*time.Second, func() time.Time { return now })
	hosts, err := f.Hosts(context.Background())
	if err != nil || len(hosts) != 1 || hosts[0].Name != "r1@box" || hosts[0].GPUs[0].CCMajor != 9 || hosts[0].GPUs[1].CCMajor != 0 {
		t.Fatalf("hosts %+v, %v", hosts, err)
	}
	_, _ = f.Hosts(context.Background())
	now = now.Add(6 * time.Second)
	_, _ = f.Hosts(context.Background())
	if calls != 2 {
		t.Fatalf("fleet read %d times, want 2 (cached within the refresh interval)", calls)
	}
}
