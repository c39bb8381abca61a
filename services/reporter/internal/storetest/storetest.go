// Package storetest is the contract every app.FrontStore must meet. Run it
// from a _test.go file against each implementation.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Factory returns a fresh, empty store.
type Factory func(t *testing.T) app.FrontStore

func read(t *testing.T, s app.FrontStore, key string) front.FrontDoc {
	t.Helper()
	var got front.FrontDoc
	err := s.Update(context.Background(), key, func(d *front.FrontDoc) error {
		got = *d
		return app.ErrNoChange
	})
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return got
}

func write(t *testing.T, s app.FrontStore, key string, doc front.FrontDoc) {
	t.Helper()
	err := s.Update(context.Background(), key, func(d *front.FrontDoc) error {
		*d = doc
		return nil
	})
	if err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
}

func sample(name string) front.FrontDoc {
	ttft, tps := 0.025, 2500.0
	return front.FrontDoc{
		StudyName: name, NTrials: 3,
		ParetoFront: []front.FrontMember{{
			TrialNumber: 2, TTFT: &ttft, TPS: &tps, State: front.StateComplete,
			Parameters: map[string]any{"tp_size": float64(2), "schedule_policy": "lpm \u00e9\u2014", "page_size": nil, "enable_mixed_chunk": true},
			Objectives: map[string]float64{"ttft": ttft, "tps": tps}, LaunchCommand: []string{"python3", "-m", "sglang.launch_server"},
		}},
		Objectives:  []front.ObjectiveInfo{{Name: "ttft", Direction: "minimize", Unit: "s", Metric: "mean_ttft_ms", Scale: 0.001}},
		Units:       map[string]string{"ttft": "s"},
		Hypervolume: 12.5,
		Counts:      front.Counts{Outcomes: 4, Benchmarked: 3, Completed: 3, Feasible: 3, Rejected: 1, RejectedByRule: map[string]int{"seed.gpu_count": 1}},
		UpdatedAt:   time.Date(2026, 3, 1, 12, 0, 0, 123, time.UTC),
	}
}

// Run checks the behaviour of a front store.
func Run(t *testing.T, newStore Factory) {
	t.Run("missing key gives the zero document", func(t *testing.T) {
		s := newStore(t)
		if got := read(t, s, "front.none"); got.StudyName != "" || got.ParetoFront != nil {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("a written document reads back identically", func(t *testing.T) {
		s := newStore(t)
		want := sample("s1")
		write(t, s, "front.s1", want)
		if got := read(t, s, "front.s1"); !front.SameFront(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("the closure sees the current document and may overwrite it", func(t *testing.T) {
		s := newStore(t)
		write(t, s, "front", sample("s1"))
		err := s.Update(context.Background(), "front", func(d *front.FrontDoc) error {
			if d.StudyName != "s1" {
				return fmt.Errorf("closure saw %q", d.StudyName)
			}
			*d = sample("s2")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, s, "front"); got.StudyName != "s2" {
			t.Fatalf("got %q", got.StudyName)
		}
	})
	t.Run("a closure error aborts the write and is returned", func(t *testing.T) {
		s := newStore(t)
		write(t, s, "front.s1", sample("s1"))
		boom := errors.New("boom")
		err := s.Update(context.Background(), "front.s1", func(d *front.FrontDoc) error {
			d.StudyName = "changed"
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if got := read(t, s, "front.s1"); got.StudyName != "s1" {
			t.Fatalf("aborted update was written: %q", got.StudyName)
		}
	})
	t.Run("ErrNoChange skips the write", func(t *testing.T) {
		s := newStore(t)
		err := s.Update(context.Background(), "front.s1", func(d *front.FrontDoc) error {
			d.StudyName = "changed"
			return app.ErrNoChange
		})
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		if got := read(t, s, "front.s1"); got.StudyName != "" {
			t.Fatalf("skipped update was written: %q", got.StudyName)
		}
	})
	t.Run("keys are independent", func(t *testing.T) {
		s := newStore(t)
		write(t, s, "front.a", sample("a"))
		write(t, s, "front.b", sample("b"))
		if a, b := read(t, s, "front.a"), read(t, s, "front.b"); a.StudyName != "a" || b.StudyName != "b" {
			t.Fatalf("got %q and %q", a.StudyName, b.StudyName)
		}
	})
}

// RunConcurrentSafe checks that concurrent updates of one key all land: each
// closure sees the result of the previous write (compare-and-swap or locking).
func RunConcurrentSafe(t *testing.T, newStore Factory) {
	s := newStore(t)
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				errs <- s.Update(context.Background(), "front", func(d *front.FrontDoc) error {
					d.StudyName = "s1"
					d.NTrials++
					return nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	if got := read(t, s, "front"); got.NTrials != writers*each {
		t.Fatalf("n_trials = %d after %d increments: an update was lost", got.NTrials, writers*each)
	}
}
