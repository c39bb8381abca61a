package sampler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler"
)

// testSpec is a small study: 5 parameters, 12 benchmarked trials.
func testSpec(name string, nTrials int) study.Spec {
	s := study.Default()
	s.StudyName = name
	s.NTrials = nTrials
	s.Space = study.Space{
		{Name: "tp_size", Values: []any{1, 2, 4}},
		{Name: "dp_size", Values: []any{1, 2, 4}},
		{Name: "schedule_policy", Values: []any{"fcfs", "lpm", "lof"}},
		{Name: "page_size", Values: []any{nil, 16, 256}},
		{Name: "cuda_graph_max_bs", Values: []any{nil, 8, 16, 32, 64}},
	}
	s.Sampler.StartupTrials = 4
	return s
}

// fleet is a fake validator plus runner: it follows the study's proposals
// and publishes one outcome for each, after a short delay, from its own
// goroutines. It rejects tp*dp > 4, reports schedule_policy lof as a
// duplicate of trial 0, fails page_size 256 with oom, and completes the rest.
type fleet struct {
	t     *testing.T
	js    jetstream.JetStream
	study string

	mu          sync.Mutex
	seen        map[int]int // trial -> proposals received
	published   int
	benchmarked int
	rejected    int
	maxInFlight int
	holdFrom    int // proposals of trials from this number on are held unanswered (0: none)
	held        []events.CandidateProposed
}

func startFleet(t *testing.T, js jetstream.JetStream, name string) *fleet {
	t.Helper()
	f := &fleet{t: t, js: js, study: name, seen: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := natsx.Tail(ctx, js, events.StreamCandidates, events.CandidatesOfStudy(name), func(data []byte, _ natsx.Meta) error {
			ev, err := events.Decode[events.CandidateProposed](data, events.TypeCandidateProposed)
			if err != nil {
				t.Errorf("fleet: bad proposal: %v", err)
				return nil
			}
			f.mu.Lock()
			f.seen[ev.Trial]++
			if n := len(f.seen) - f.published; n > f.maxInFlight {
				f.maxInFlight = n
			}
			if f.holdFrom > 0 && ev.Trial >= f.holdFrom {
				f.held = append(f.held, ev)
				f.mu.Unlock()
				return nil
			}
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.answer(ctx, ev)
			}()
			return nil
		}, nil)
		if err != nil {
			t.Errorf("fleet tail: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

// holdFrom holds the proposals of trial n and later unanswered; resume answers them.
func (f *fleet) hold(n int) { f.mu.Lock(); f.holdFrom = n; f.mu.Unlock() }

func (f *fleet) heldCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.held) }

func (f *fleet) resume(ctx context.Context) {
	f.mu.Lock()
	held := f.held
	f.held, f.holdFrom = nil, 0
	f.mu.Unlock()
	for _, ev := range held {
		f.answer(ctx, ev)
	}
}

func (f *fleet) answer(ctx context.Context, ev events.CandidateProposed) {
	time.Sleep(time.Duration(2+ev.Trial%5) * time.Millisecond)
	p, err := study.NormalizeParams(ev.Params)
	if err != nil {
		f.t.Errorf("fleet: trial %d: %v", ev.Trial, err)
		return
	}
	now := time.Now()
	subject := events.OutcomeSubject(f.study, ev.Trial)
	var out events.Event
	benchmarked := true
	switch {
	case study.AsInt(p, "tp_size", 1)*study.AsInt(p, "dp_size", 1) > 4:
		out = events.CandidateRejected{
			Envelope:   events.NewEnvelope(events.TypeCandidateRejected, f.study, ev.Trial, now),
			Params:     ev.Params,
			Rejections: []events.Rejection{{Rule: "seed.gpu_count", RuleSet: "seed", Reason: "too many GPUs"}},
		}
		benchmarked = false
	case study.AsString(p, "schedule_policy") == "lof" && ev.Trial != 0:
		zero := 0
		out = events.CandidateRejected{
			Envelope: events.NewEnvelope(events.TypeCandidateRejected, f.study, ev.Trial, now),
			Params:   ev.Params, DuplicateOf: &zero,
			Rejections: []events.Rejection{{Rule: "dedup.canonical", RuleSet: "dedup", Reason: "same as trial 0"}},
		}
		benchmarked = false
	case study.AsInt(p, "page_size", 0) == 256:
		out = events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, f.study, ev.Trial, now),
			Params:   ev.Params, State: events.StateFailed, FailureClass: events.FailOOM, Runner: "fake",
		}
	default:
		tp, dp, bs := study.AsInt(p, "tp_size", 1), study.AsInt(p, "dp_size", 1), study.AsInt(p, "cuda_graph_max_bs", 16)
		out = events.TrialResult{
			Envelope: events.NewEnvelope(events.TypeTrialResult, f.study, ev.Trial, now),
			Params:   ev.Params, State: events.StateComplete, Runner: "fake",
			Metrics: map[string]float64{
				"mean_ttft_ms":      50 + 100/float64(tp) + float64(bs),
				"output_throughput": 1000*float64(dp) + 10*float64(bs),
			},
		}
	}
	// A proposal republished after a fresh start carries an incarnation
	// suffix in its id; the outcome's id carries it too, or the server would
	// drop it as a duplicate of the purged study's outcome.
	if i := strings.LastIndexByte(ev.ID, '@'); i >= 0 {
		switch o := out.(type) {
		case events.CandidateRejected:
			o.ID += ev.ID[i:]
			out = o
		case events.TrialResult:
			o.ID += ev.ID[i:]
			out = o
		}
	}
	// Count the outcome before publishing it: the sampler cannot see it
	// earlier, so the fleet's in-flight count never lags behind the sampler's.
	f.count(benchmarked, +1)
	if err := natsx.PublishOnce(ctx, f.js, subject, out); err != nil {
		f.count(benchmarked, -1)
		if errors.Is(err, natsx.ErrAlreadyRecorded) || ctx.Err() != nil {
			return
		}
		f.t.Errorf("fleet: publish outcome of trial %d: %v", ev.Trial, err)
	}
}

func (f *fleet) count(benchmarked bool, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published += d
	if benchmarked {
		f.benchmarked += d
	} else {
		f.rejected += d
	}
}

func (f *fleet) snapshot() (seen map[int]int, published, benchmarked, rejected, maxInFlight int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen = make(map[int]int, len(f.seen))
	for k, v := range f.seen {
		seen[k] = v
	}
	return seen, f.published, f.benchmarked, f.rejected, f.maxInFlight
}

func config(srv *server.Server, spec study.Spec) sampler.Config {
	return sampler.Config{
		NATS:      natsx.ConnConfig{URL: srv.ClientURL()},
		Spec:      spec,
		FleetPoll: 50 * time.Millisecond,
	}
}

func runSampler(t *testing.T, ctx context.Context, cfg sampler.Config) error {
	t.Helper()
	return sampler.Run(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
}

func studyState(t *testing.T, js jetstream.JetStream, name string) events.StudyState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := natsx.GetJSON[events.StudyState](ctx, kv, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkComplete checks the study's end state against what the fleet did.
func checkComplete(t *testing.T, js jetstream.JetStream, f *fleet, name string, nTrials, capacity int) {
	t.Helper()
	st := studyState(t, js, name)
	seen, published, benchmarked, rejected, maxInFlight := f.snapshot()
	if st.Status != events.StudyComplete || st.StopReason != "n_trials reached" {
		t.Fatalf("study state %q (%q), want complete (n_trials reached)", st.Status, st.StopReason)
	}
	if st.Benchmarked != nTrials || benchmarked != nTrials {
		t.Fatalf("benchmarked: state %d, fleet %d, want %d", st.Benchmarked, benchmarked, nTrials)
	}
	// Every outcome reached the study, and rejections did not use the budget.
	if st.Rejected != rejected || st.Benchmarked+st.Rejected != published {
		t.Fatalf("state counts %d benchmarked + %d rejected, fleet published %d (%d rejections)",
			st.Benchmarked, st.Rejected, published, rejected)
	}
	if st.Proposed != len(seen) || st.Proposed != published {
		t.Fatalf("proposed %d, fleet saw %d trials and published %d outcomes", st.Proposed, len(seen), published)
	}
	for trial, n := range seen {
		if n != 1 {
			t.Fatalf("trial %d proposed %d times", trial, n)
		}
		if trial < 0 || trial >= len(seen) {
			t.Fatalf("trial numbers are not 0..%d: %d", len(seen)-1, trial)
		}
	}
	if capacity > 0 && maxInFlight > capacity {
		t.Fatalf("%d trials in flight, capacity %d", maxInFlight, capacity)
	}
	if _, err := study.FromJSON(st.Spec); err != nil {
		t.Fatalf("state spec: %v", err)
	}
	t.Logf("%d proposed, %d benchmarked, %d rejected, at most %d in flight", st.Proposed, st.Benchmarked, st.Rejected, maxInFlight)
}

func TestRunCompletesStudy(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials, capacity = "complete", 12, 3
	f := startFleet(t, js, name)
	cfg := config(srv, testSpec(name, nTrials))
	cfg.MaxInFlight = capacity
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only at the timeout")
	}
	checkComplete(t, js, f, name, nTrials, capacity)

	// Run again on the complete study: it returns at once, proposing nothing.
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials, capacity)

	// A larger budget continues the study to the new total.
	cfg.NTrials = nTrials + 4
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("third Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials+4, capacity)
}

func TestRunRestartContinues(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials, capacity = "restart", 12, 2
	f := startFleet(t, js, name)
	cfg := config(srv, testSpec(name, nTrials))
	cfg.MaxInFlight = capacity

	// First life: the fleet answers trials 0-3 and holds the later ones, so
	// when it is stopped, capacity trials are in flight across the restart.
	f.hold(4)
	ctx1, cancel1 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- runSampler(t, ctx1, cfg) }()
	waitFor(t, 20*time.Second, func() bool { return f.heldCount() == capacity })
	cancel1()
	if err := <-errc; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	seen1, _, _, _, _ := f.snapshot()
	last := -1
	for trial := range seen1 {
		last = max(last, trial)
	}
	st1 := studyState(t, js, name)
	if st1.Status != events.StudyRunning {
		t.Fatalf("after the first life: status %q", st1.Status)
	}

	// Second life: the held trials are still in flight when it restores;
	// they get their outcomes once it has written its state.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	go func() {
		waitFor(t, 20*time.Second, func() bool { return studyState(t, js, name).UpdatedAt.After(st1.UpdatedAt) })
		f.resume(ctx2)
	}()
	if err := runSampler(t, ctx2, cfg); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	seen2, _, _, _, _ := f.snapshot()
	if _, ok := seen2[last+1]; !ok {
		t.Fatalf("numbering did not continue at %d", last+1)
	}
	checkComplete(t, js, f, name, nTrials, capacity)
}

func TestRunFollowsFleetCapacity(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials = "fleet", 8
	f := startFleet(t, js, name)
	cfg := config(srv, testSpec(name, nTrials))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- runSampler(t, ctx, cfg) }()

	// No runner alive: nothing is proposed.
	time.Sleep(300 * time.Millisecond)
	if seen, _, _, _, _ := f.snapshot(); len(seen) != 0 {
		t.Fatalf("%d proposals with no runner alive", len(seen))
	}
	kv, err := natsx.KV(ctx, js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	for i, slots := range []int{1, 1} {
		if err := natsx.PutJSON(ctx, kv, fmt.Sprintf("runner-%d", i), events.RunnerStatus{Runner: fmt.Sprintf("runner-%d", i), Slots: slots}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials, 2)
}

func TestRunCapsInFlightBySpec(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials = "capped", 8
	f := startFleet(t, js, name)
	spec := testSpec(name, nTrials)
	spec.Sampler.MaxInFlight = 1
	cfg := config(srv, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := natsx.KV(ctx, js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	// The fleet has 6 slots, the spec allows 1 trial in flight.
	if err := natsx.PutJSON(ctx, kv, "runner-0", events.RunnerStatus{Runner: "runner-0", Slots: 6}); err != nil {
		t.Fatal(err)
	}
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkComplete(t, js, f, name, nTrials, 1)
}

func TestRunFreshStartsOver(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const name, nTrials = "fresh", 6
	cfg := config(srv, testSpec(name, nTrials))
	cfg.MaxInFlight = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := startFleet(t, js, name)
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Fresh: the stored study is purged and numbering starts over at 0.
	cfg.Fresh = true
	if err := runSampler(t, ctx, cfg); err != nil {
		t.Fatalf("fresh Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("fresh Run returned only at the timeout")
	}
	st := studyState(t, js, name)
	if st.Status != events.StudyComplete || st.Benchmarked != nTrials {
		t.Fatalf("fresh study: status %q, %d benchmarked", st.Status, st.Benchmarked)
	}
	if seen, _, _, _, _ := f.snapshot(); seen[0] != 2 || seen[1] != 2 {
		t.Fatalf("fresh study did not start over at trial 0: %v", seen)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SGTUNE_NATS_URL": "nats://example:4222", "SGTUNE_STUDY": "s1", "SGTUNE_N_TRIALS": "30",
		"SGTUNE_SAMPLER": "nsga2", "SGTUNE_SEED": "7", "SGTUNE_NO_LOAD": "true", "SGTUNE_MAX_IN_FLIGHT": "4",
	}
	cfg, err := sampler.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://example:4222" || cfg.Spec.StudyName != "s1" || cfg.NTrials != 30 ||
		cfg.Algorithm != "nsga2" || cfg.Seed == nil || *cfg.Seed != 7 || !cfg.Fresh || cfg.MaxInFlight != 4 {
		t.Fatalf("config %+v", cfg)
	}
	for k, v := range map[string]string{"SGTUNE_N_TRIALS": "x", "SGTUNE_SAMPLER": "cmaes", "SGTUNE_SEED": "1.5", "SGTUNE_STUDY": "a b", "SGTUNE_SPEC": "/nonexistent.yaml"} {
		bad := map[string]string{k: v}
		if _, err := sampler.LoadConfig(func(k string) string { return bad[k] }); err == nil {
			t.Fatalf("%s=%q accepted", k, v)
		}
	}
	if cfg, err := sampler.LoadConfig(func(string) string { return "" }); err != nil || cfg.Spec.StudyName != study.Default().StudyName {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
