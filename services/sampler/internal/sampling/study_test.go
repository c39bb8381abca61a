package sampling

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestBaseline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    study.Space
		expected events.Params
	}{
		{
			name:  "seed space",
			given: study.SeedSpace(),
			expected: events.Params{
				"tp_size": 1, "attention_backend": nil, "chunked_prefill_size": nil, "max_prefill_tokens": 16384,
				"dp_size": 1, "schedule_policy": "fcfs", "pp_size": 1, "decode_attention_backend": nil,
				"prefill_attention_backend": nil, "page_size": nil, "cuda_graph_max_bs": nil,
				"enable_mixed_chunk": false, "disable_overlap_schedule": false, "enable_torch_compile": false,
				"num_continuous_decode_steps": 1, "enable_two_batch_overlap": false, "tokenizer_worker_num": 1,
				"sampling_backend": nil,
			},
		},
		{
			name: "nil wins over the default, default over the first value, else the first value",
			given: study.Space{
				{Name: "tp_size", Values: []any{2, 1}},
				{Name: "page_size", Values: []any{16, nil}},
				{Name: "max_prefill_tokens", Values: []any{4096, 8192}},
				{Name: "enable_mixed_chunk", Values: []any{true, false}},
			},
			expected: events.Params{"tp_size": 1, "page_size": nil, "max_prefill_tokens": 4096, "enable_mixed_chunk": false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := toySpec(study.AlgoGPEHVI, 10)
			sp.Space = tc.given
			s, err := NewStudy(sp, Options{})
			if err != nil {
				t.Fatal(err)
			}
			props, err := s.Propose(1)
			if err != nil {
				t.Fatal(err)
			}
			if len(props) != 1 || props[0].Trial != 0 || props[0].Sampler != SamplerBaseline {
				t.Fatalf("expected baseline trial 0, got %+v", props)
			}
			if !reflect.DeepEqual(props[0].Params, tc.expected) {
				t.Fatalf("baseline params\n got %v\nwant %v", props[0].Params, tc.expected)
			}
		})
	}
}

func TestBaselineDisabled(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoRandom, 10)
	sp.Sampler.Baseline = ptr(false)
	s, err := NewStudy(sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.Propose(1)
	if props[0].Trial != 0 || props[0].Sampler != study.AlgoRandom {
		t.Fatalf("expected a random trial 0, got %+v", props[0])
	}
}

func TestTellIdempotent(t *testing.T) {
	t.Parallel()
	s, err := NewStudy(toySpec(study.AlgoGPEHVI, 10), Options{})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.Propose(3)
	good := Outcome{Trial: props[0].Trial, Kind: Completed, Metrics: map[string]float64{"m1": 1, "m2": 2}}
	tells := []Outcome{
		good,
		good, // the same again
		{Trial: props[0].Trial, Kind: Failed, FailureClass: events.FailOOM}, // a different, later outcome
		{Trial: props[1].Trial, Kind: Rejected, Rules: []string{"seed.gpu_count"}},
		{Trial: props[1].Trial, Kind: Rejected, Rules: []string{"seed.gpu_count"}},
	}
	for _, o := range tells {
		if err := s.Tell(o); err != nil {
			t.Fatalf("Tell(%+v): %v", o, err)
		}
	}
	expected := Counters{Proposed: 3, InFlight: 1, Completed: 1, Rejected: 1}
	if got := s.Counters(); got != expected {
		t.Fatalf("counters: got %+v, want %+v", got, expected)
	}
	// goptuna holds the first outcome.
	ft, err := s.h.g.Storage.GetTrial(s.h.byNumber[props[0].Trial].gid)
	if err != nil {
		t.Fatal(err)
	}
	if ft.State != goptuna.TrialStateComplete || ft.Value != 1 {
		t.Fatalf("goptuna trial: state %v value %v", ft.State, ft.Value)
	}
	if err := s.Tell(Outcome{Trial: 99, Kind: Completed}); !errors.Is(err, ErrUnknownTrial) {
		t.Fatalf("unknown trial: got %v, want ErrUnknownTrial", err)
	}
	if err := s.Tell(Outcome{Trial: props[2].Trial}); !errors.Is(err, ErrBadOutcome) {
		t.Fatalf("zero kind: got %v, want ErrBadOutcome", err)
	}
}

func TestGoptunaRecordsParams(t *testing.T) {
	t.Parallel()
	s, err := NewStudy(toySpec(study.AlgoRandom, 10), Options{})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.Propose(2)
	trials, err := s.h.g.GetTrials()
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 2 {
		t.Fatalf("goptuna has %d trials, want 2", len(trials))
	}
	for i, ft := range trials {
		for name, v := range props[i].Params {
			if ft.Params[name] != study.FormatValue(v) {
				t.Fatalf("trial %d %s: goptuna has %v, proposal %v", i, name, ft.Params[name], v)
			}
		}
		if ft.State != goptuna.TrialStateRunning {
			t.Fatalf("trial %d: state %v, want running", i, ft.State)
		}
	}
}

func TestRestore(t *testing.T) {
	t.Parallel()
	// A first life: 6 proposals, 4 outcomes.
	sp := toySpec(study.AlgoGPEHVI, 10)
	first, err := NewStudy(sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := first.Propose(6)
	var outs []Outcome
	for _, p := range props[:4] {
		o := toyEval(p.Params, sp.Space)
		o.Trial = p.Trial
		outs = append(outs, o)
	}
	// The record replays out of order, with a repeated message, and JSON
	// turns ints into float64.
	var replay []Proposal
	for i := len(props) - 1; i >= 0; i-- {
		p := props[i]
		params := events.Params{}
		for k, v := range p.Params {
			if n, ok := v.(int); ok {
				params[k] = float64(n)
			} else {
				params[k] = v
			}
		}
		replay = append(replay, Proposal{Trial: p.Trial, Params: params, Sampler: p.Sampler})
	}
	replay = append(replay, replay[0])
	outs = append(outs, outs[0])

	second, err := NewStudy(sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Restore(replay, outs); err != nil {
		t.Fatal(err)
	}
	wantC := Counters{Proposed: 6, InFlight: 2}
	for _, o := range outs[:4] {
		switch o.Kind {
		case Completed:
			wantC.Completed++
		case Rejected:
			wantC.Rejected++
		}
	}
	if got := second.Counters(); got != wantC {
		t.Fatalf("counters: got %+v, want %+v", got, wantC)
	}
	more, err := second.Propose(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	keys := map[string]bool{}
	for _, p := range append(props, more...) {
		if seen[p.Trial] {
			t.Fatalf("trial number %d used twice", p.Trial)
		}
		seen[p.Trial] = true
		x, _ := second.codec.encode(p.Params)
		if keys[keyOf(x)] {
			t.Fatalf("trial %d repeats a configuration", p.Trial)
		}
		keys[keyOf(x)] = true
	}
	if more[0].Trial != 6 || more[0].Sampler == SamplerBaseline {
		t.Fatalf("numbering continues at 6 without a second baseline, got %+v", more[0])
	}
	// An outcome without a proposal, but with params, is adopted.
	orphan := Outcome{Trial: 40, Kind: Failed, FailureClass: events.FailCrash, Params: props[0].Params}
	if err := second.Tell(orphan); err != nil {
		t.Fatal(err)
	}
	if second.NextTrial() != 41 {
		t.Fatalf("next trial %d, want 41", second.NextTrial())
	}
}

func TestDone(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	completed := func(m1, m2 float64) Outcome {
		return Outcome{Kind: Completed, Metrics: map[string]float64{"m1": m1, "m2": m2}}
	}
	tests := []struct {
		name           string
		givenNTrials   int
		givenBudget    time.Duration
		givenWindow    int
		givenMinImpr   float64
		givenOutcomes  []Outcome
		givenElapsed   time.Duration
		expectedDone   bool
		expectedReason string
	}{
		{
			name: "budget not used up", givenNTrials: 3,
			givenOutcomes: []Outcome{completed(1, 1), {Kind: Failed, FailureClass: events.FailOOM}},
		},
		{
			name: "completed and failed use the budget", givenNTrials: 2,
			givenOutcomes: []Outcome{completed(1, 1), {Kind: Failed, FailureClass: events.FailOOM}},
			expectedDone:  true, expectedReason: StopNTrials,
		},
		{
			name: "rejections and duplicates do not", givenNTrials: 2,
			givenOutcomes: []Outcome{completed(1, 1), {Kind: Rejected, Rules: []string{"r"}}, {Kind: Duplicate}},
		},
		{
			name: "time budget", givenNTrials: 10, givenBudget: time.Hour, givenElapsed: time.Hour,
			expectedDone: true, expectedReason: StopTimeBudget,
		},
		{
			name: "time budget not reached", givenNTrials: 10, givenBudget: time.Hour, givenElapsed: time.Hour - time.Second,
		},
		{
			name: "plateau: no growth over the window", givenNTrials: 10, givenWindow: 3,
			givenOutcomes: []Outcome{completed(1, 5), completed(5, 9), completed(2, 4), completed(6, 6), completed(3, 2)},
			expectedDone:  true, expectedReason: StopPlateau,
		},
		{
			name: "no plateau: the window improved the front", givenNTrials: 10, givenWindow: 3,
			givenOutcomes: []Outcome{completed(1, 5), completed(5, 9), completed(2, 4), completed(0.5, 9.5), completed(3, 2)},
		},
		{
			name: "no plateau: growth above the minimum", givenNTrials: 10, givenWindow: 2, givenMinImpr: 0.01,
			givenOutcomes: []Outcome{completed(1, 5), completed(5, 9), completed(4.9, 8.95), completed(3, 3)},
		},
		{
			name: "plateau: growth below the minimum", givenNTrials: 10, givenWindow: 2, givenMinImpr: 0.5,
			// (4.9, 8.95) adds about 3 % to the hypervolume; (3, 3) nothing.
			givenOutcomes: []Outcome{completed(1, 5), completed(5, 9), completed(4.9, 8.95), completed(3, 3)},
			expectedDone:  true, expectedReason: StopPlateau,
		},
		{
			name: "plateau needs more than a window of results", givenNTrials: 10, givenWindow: 3,
			givenOutcomes: []Outcome{completed(1, 5), completed(5, 9), completed(2, 6)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := toySpec(study.AlgoRandom, tc.givenNTrials)
			sp.TimeBudget = events.Duration(tc.givenBudget)
			sp.Sampler.PlateauWindow = tc.givenWindow
			sp.Sampler.PlateauMinImprovement = tc.givenMinImpr
			s, err := NewStudy(sp, Options{StartedAt: t0})
			if err != nil {
				t.Fatal(err)
			}
			props, _ := s.Propose(len(tc.givenOutcomes))
			for i, o := range tc.givenOutcomes {
				o.Trial = props[i].Trial
				if err := s.Tell(o); err != nil {
					t.Fatal(err)
				}
			}
			done, reason := s.Done(t0.Add(tc.givenElapsed))
			if done != tc.expectedDone || reason != tc.expectedReason {
				t.Fatalf("Done: got (%v, %q), want (%v, %q)", done, reason, tc.expectedDone, tc.expectedReason)
			}
		})
	}
}

func TestRoom(t *testing.T) {
	t.Parallel()
	s, err := NewStudy(toySpec(study.AlgoRandom, 5), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Room(3); got != 3 {
		t.Fatalf("empty study: room %d, want 3", got)
	}
	props, _ := s.Propose(3)
	if got := s.Room(3); got != 0 {
		t.Fatalf("full: room %d, want 0", got)
	}
	s.Tell(Outcome{Trial: props[0].Trial, Kind: Completed, Metrics: map[string]float64{"m1": 1, "m2": 1}})
	s.Tell(Outcome{Trial: props[1].Trial, Kind: Failed})
	// 2 benchmarked + 1 in flight of 5: 2 more may go.
	if got := s.Room(10); got != 2 {
		t.Fatalf("room %d, want 2 (budget)", got)
	}
	s.Tell(Outcome{Trial: props[2].Trial, Kind: Rejected})
	if got := s.Room(10); got != 3 {
		t.Fatalf("room %d, want 3 (rejections free the budget)", got)
	}
}

func TestProposeBatchIsDiverse(t *testing.T) {
	t.Parallel()
	for _, algo := range []string{study.AlgoGPEHVI, study.AlgoNSGA2, study.AlgoRandom, study.AlgoMOTPE} {
		// Not tpe and scalarized-tpe: goptuna's TPE draws with the unseeded package-level math/rand.
		t.Run(algo, func(t *testing.T) {
			t.Parallel()
			sp := toySpec(algo, 100)
			seed := int64(7)
			s, err := NewStudy(sp, Options{Seed: &seed})
			if err != nil {
				t.Fatal(err)
			}
			// Past the startup phase, then one batch of 8.
			for range 30 {
				props, _ := s.Propose(1)
				o := toyEval(props[0].Params, sp.Space)
				o.Trial = props[0].Trial
				s.Tell(o)
			}
			batch, err := s.Propose(8)
			if err != nil || len(batch) != 8 {
				t.Fatalf("Propose(8): %d proposals, %v", len(batch), err)
			}
			xs := make([][]int, len(batch))
			for i, p := range batch {
				if p.Trial != 30+i {
					t.Fatalf("batch trial %d numbered %d", i, p.Trial)
				}
				xs[i], _ = s.codec.encode(p.Params)
			}
			total, pairs := 0, 0
			for i := range xs {
				for j := i + 1; j < len(xs); j++ {
					d := hamming(xs[i], xs[j])
					if d == 0 {
						t.Fatalf("trials %d and %d are identical", batch[i].Trial, batch[j].Trial)
					}
					total += d
					pairs++
				}
			}
			// Spread out: on average the batch's configs differ in at least
			// two of the eight parameters.
			if mean := float64(total) / float64(pairs); mean < 2 {
				t.Fatalf("mean pairwise distance %.2f, want >= 2", mean)
			}
		})
	}
}

func hamming(a, b []int) int {
	d := 0
	for i := range a {
		if a[i] != b[i] {
			d++
		}
	}
	return d
}

func TestSpaceExhausted(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoGPEHVI, 100)
	sp.Space = study.Space{
		{Name: "tp_size", Values: []any{1, 2}},
		{Name: "enable_mixed_chunk", Values: []any{false, true}},
	}
	sp.Sampler.StartupTrials = 1
	s, err := NewStudy(sp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 4 {
		props, err := s.Propose(1)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := s.codec.encode(props[0].Params)
		if got[keyOf(x)] {
			t.Fatalf("duplicate configuration %v", props[0].Params)
		}
		got[keyOf(x)] = true
		s.Tell(Outcome{Trial: props[0].Trial, Kind: Completed, Metrics: map[string]float64{"m1": 1, "m2": 1}})
	}
	if _, err := s.Propose(1); !errors.Is(err, ErrSpaceExhausted) {
		t.Fatalf("fifth proposal: got %v, want ErrSpaceExhausted", err)
	}
	if done, reason := s.Done(time.Now()); !done || reason != StopExhausted {
		t.Fatalf("Done: (%v, %q)", done, reason)
	}
}

func TestProposalLimit(t *testing.T) {
	t.Parallel()
	s, err := NewStudy(toySpec(study.AlgoRandom, 5), Options{MaxProposals: 3})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.Propose(10)
	if len(props) != 3 {
		t.Fatalf("%d proposals, want 3", len(props))
	}
	for _, p := range props {
		s.Tell(Outcome{Trial: p.Trial, Kind: Rejected})
	}
	if done, reason := s.Done(time.Now()); !done || reason != StopProposalLimit {
		t.Fatalf("Done: (%v, %q)", done, reason)
	}
}

func TestNewStudyErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewStudy(toySpec("cmaes", 5), Options{}); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("got %v, want ErrUnknownAlgorithm", err)
	}
	sp := toySpec(study.AlgoGPEHVI, 5)
	sp.Space = study.Space{{Name: "no_such_flag", Values: []any{1}}}
	if _, err := NewStudy(sp, Options{}); !errors.Is(err, study.ErrUnknownParam) {
		t.Fatalf("got %v, want ErrUnknownParam", err)
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	t.Parallel()
	for _, algo := range []string{study.AlgoGPEHVI, study.AlgoNSGA2, study.AlgoRandom, study.AlgoMOTPE} {
		// Not tpe and scalarized-tpe: goptuna's TPE draws with the unseeded package-level math/rand.
		h1, _ := runToy(t, algo, 5, 25, 3)
		h2, _ := runToy(t, algo, 5, 25, 3)
		if !almostEqual(h1, h2) {
			t.Fatalf("%s: same seed, hypervolumes %v and %v", algo, h1, h2)
		}
	}
}
