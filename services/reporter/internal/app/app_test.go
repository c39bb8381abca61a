package app_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
	"github.com/sgtune/sgtune/services/reporter/internal/memstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeStudies maps study names to their info.
type fakeStudies struct {
	mu    sync.Mutex
	infos map[string]app.StudyInfo
}

func (f *fakeStudies) Study(_ context.Context, name string) (app.StudyInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.infos[name]
	if !ok {
		return app.StudyInfo{}, app.ErrStudyNotFound
	}
	return info, nil
}

// fakeHistory is the outcomes stream: HandleOutcome's callers append before handling.
type fakeHistory struct {
	stored  map[string][]front.Outcome
	replays int
}

func (f *fakeHistory) Replay(_ context.Context, name string, fn func(front.Outcome) error) error {
	f.replays++
	for _, o := range f.stored[name] {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeHistory) Between(_ context.Context, name string, after, before uint64, fn func(front.Outcome) error) error {
	for _, o := range f.stored[name] {
		if o.Seq > after && o.Seq < before {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordingSink records results writes.
type recordingSink struct{ writes []front.ResultsDoc }

func (r *recordingSink) WriteResults(_ string, doc front.ResultsDoc) error {
	r.writes = append(r.writes, doc)
	return nil
}

// failingStore fails while fail is set, then delegates.
type failingStore struct {
	*memstore.Store
	fail bool
}

func (f *failingStore) Update(ctx context.Context, key string, fn func(*front.FrontDoc) error) error {
	if f.fail {
		return errors.New("kv unavailable")
	}
	return f.Store.Update(ctx, key, fn)
}

type fixture struct {
	studies *fakeStudies
	history *fakeHistory
	store   *failingStore
	sink    *recordingSink
	svc     *app.Service
}

func newFixture(t *testing.T) *fixture {
	spec := study.Default()
	f := &fixture{
		studies: &fakeStudies{infos: map[string]app.StudyInfo{
			"s1": {Spec: spec, StartedAt: t0}, "s2": {Spec: spec, StartedAt: t0},
		}},
		history: &fakeHistory{stored: map[string][]front.Outcome{}},
		store:   &failingStore{Store: memstore.New()},
		sink:    &recordingSink{},
	}
	f.svc = app.NewService(f.studies, f.history, f.store, f.sink, zerolog.New(t.Output()))
	return f
}

func outcome(name string, n int, ttftMs, tps float64) front.Outcome {
	return front.Outcome{
		Study: name, Trial: n, State: front.StateComplete, OccurredAt: t0.Add(time.Duration(n) * time.Minute),
		Params:  map[string]any{"tp_size": float64(1)},
		Metrics: map[string]float64{"mean_ttft_ms": ttftMs, "output_throughput": tps},
	}
}

// publish stores o in the history and handles it, as the consumer would.
func (f *fixture) publish(t *testing.T, o front.Outcome) error {
	t.Helper()
	if !slices.ContainsFunc(f.history.stored[o.Study], func(x front.Outcome) bool { return x.Trial == o.Trial }) {
		f.history.stored[o.Study] = append(f.history.stored[o.Study], o)
	}
	return f.svc.HandleOutcome(context.Background(), o)
}

func (f *fixture) front(t *testing.T, key string) front.FrontDoc {
	t.Helper()
	b, ok := f.store.Get(key)
	if !ok {
		t.Fatalf("no %s", key)
	}
	d, err := front.DecodeFront(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHandleOutcomeWritesBothKeysAndFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, o := range []front.Outcome{outcome("s1", 0, 50, 1000), outcome("s1", 1, 30, 1500), outcome("s1", 2, 60, 900)} {
		if err := f.publish(t, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"front.s1", "front"} {
		if d := f.front(t, key); d.StudyName != "s1" || d.NTrials != 3 || len(d.ParetoFront) != 1 {
			t.Fatalf("%s = %+v", key, d)
		}
	}
	if len(f.sink.writes) != 3 || len(f.sink.writes[2].Trials) != 3 {
		t.Fatalf("results written %d times", len(f.sink.writes))
	}
	if f.history.replays != 1 {
		t.Fatalf("replayed %d times, want once (first outcome of the study)", f.history.replays)
	}
}

func TestHandleOutcomeDuplicateChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := outcome("s1", 0, 50, 1000)
	if err := f.publish(t, o); err != nil {
		t.Fatal(err)
	}
	writes, files, before := f.store.Writes(), len(f.sink.writes), f.front(t, "front.s1")
	if err := f.publish(t, o); err != nil {
		t.Fatal(err)
	}
	if f.store.Writes() != writes || len(f.sink.writes) != files || !front.SameFront(before, f.front(t, "front.s1")) {
		t.Fatalf("a duplicate outcome wrote again (%d -> %d KV writes, %d -> %d files)", writes, f.store.Writes(), files, len(f.sink.writes))
	}
}

func TestHandleOutcomeRebuildsFromHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Outcomes stored before this process started (already acked by a previous reporter).
	f.history.stored["s1"] = []front.Outcome{outcome("s1", 0, 50, 1000), outcome("s1", 1, 30, 1500)}
	if err := f.publish(t, outcome("s1", 2, 20, 1200)); err != nil {
		t.Fatal(err)
	}
	if d := f.front(t, "front.s1"); d.NTrials != 3 || len(d.ParetoFront) != 2 {
		t.Fatalf("rebuilt front has %d trials, %d members", d.NTrials, len(d.ParetoFront))
	}
}

func TestHandleOutcomeResetsRestartedStudy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for n := range 3 {
		if err := f.publish(t, outcome("s1", n, float64(50-n), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	// The study is restarted fresh: new start time, its outcomes purged.
	f.studies.infos["s1"] = app.StudyInfo{Spec: study.Default(), StartedAt: t0.Add(time.Hour)}
	f.history.stored["s1"] = nil
	if err := f.publish(t, outcome("s1", 0, 80, 500)); err != nil {
		t.Fatal(err)
	}
	d := f.front(t, "front.s1")
	if d.NTrials != 1 || !d.StartedAt.Equal(t0.Add(time.Hour)) || *d.ParetoFront[0].TTFT != 0.08 {
		t.Fatalf("front after restart = %+v", d)
	}
}

func TestFrontKeyFollowsLatestStudy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := outcome("s1", 0, 50, 1000)
	if err := f.publish(t, old); err != nil {
		t.Fatal(err)
	}
	newer := outcome("s2", 5, 50, 1000)
	if err := f.publish(t, newer); err != nil {
		t.Fatal(err)
	}
	if got := f.front(t, "front").StudyName; got != "s2" {
		t.Fatalf("front holds %s, want s2", got)
	}
	// A redelivered outcome of the older study does not take the key back.
	if err := f.publish(t, old); err != nil {
		t.Fatal(err)
	}
	if got := f.front(t, "front").StudyName; got != "s2" {
		t.Fatalf("front holds %s after an old study's redelivery, want s2", got)
	}
	if got := f.svc.Fronts(); len(got) != 2 || got[1].StudyName != "s1" {
		t.Fatalf("Fronts order %v", got)
	}
}

func TestHandleOutcomeErrors(t *testing.T) {
	t.Parallel()
	t.Run("unknown study", func(t *testing.T) {
		f := newFixture(t)
		if err := f.publish(t, outcome("nope", 0, 1, 1)); !errors.Is(err, app.ErrStudyNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad outcome", func(t *testing.T) {
		f := newFixture(t)
		o := outcome("s1", 0, 1, 1)
		o.State = "RUNNING"
		if err := f.svc.HandleOutcome(context.Background(), o); !errors.Is(err, front.ErrBadOutcome) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("store failure is returned, and a redelivery writes", func(t *testing.T) {
		f := newFixture(t)
		f.store.fail = true
		o := outcome("s1", 0, 50, 1000)
		if err := f.publish(t, o); err == nil {
			t.Fatal("want an error while the store fails")
		}
		f.store.fail = false
		if err := f.publish(t, o); err != nil {
			t.Fatal(err)
		}
		if d := f.front(t, "front.s1"); d.NTrials != 1 {
			t.Fatalf("front after redelivery = %+v", d)
		}
		if len(f.sink.writes) != 1 {
			t.Fatalf("results written %d times, want once", len(f.sink.writes))
		}
	})
}
