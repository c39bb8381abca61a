package front

import (
	"math"
	"slices"
	"testing"
)

// withParams gives an outcome its own configuration.
func withParams(o Outcome, tp, dp int) Outcome {
	o.Params = map[string]any{"tp_size": float64(tp), "dp_size": float64(dp)}
	return o
}

// TestRepeatsFoldIntoTheFirstTrial: with sampler.repeats, trials of one
// configuration are one front entry (the first trial's), valued at the mean
// of its runs with their spread; a configuration that fails or misses an
// SLO on repeat drops off; repeat runs say which trial they repeat.
func TestRepeatsFoldIntoTheFirstTrial(t *testing.T) {
	t.Parallel()
	spec := testSpec()
	spec.Sampler.Repeats = 1
	r := NewReport(testStudy, spec, t0)
	fold(t, r,
		withParams(complete(0, 200, 1000), 1, 1), // baseline
		withParams(complete(1, 100, 3000), 2, 1),
		withParams(complete(2, 50, 2000), 4, 1),
		withParams(complete(3, 140, 3400), 2, 1), // repeat of 1: mean 120 ms, 3200 tok/s
	)
	doc := r.Front()
	if got := frontTrials(doc); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("front %v, want [1 2]", got)
	}
	m := doc.ParetoFront[0]
	if math.Abs(m.Objectives["ttft"]-0.12) > 1e-12 || math.Abs(m.Objectives["tps"]-3200) > 1e-9 {
		t.Fatalf("trial 1 objectives %v, want the mean (0.12 s, 3200 tok/s)", m.Objectives)
	}
	if !slices.Equal(m.Runs, []int{1, 3}) {
		t.Fatalf("runs %v, want [1 3]", m.Runs)
	}
	sp := m.Spread["tps"]
	if sp.N != 2 || sp.Min != 3000 || sp.Max != 3400 || math.Abs(sp.Std-math.Sqrt(2)*200) > 1e-9 {
		t.Fatalf("tps spread %+v", sp)
	}
	if g := m.GainOverBaseline["tps"]; math.Abs(g-3.2) > 1e-12 {
		t.Fatalf("gain over baseline %v, want 3.2 (of the mean)", g)
	}
	res := r.Results()
	if rec := res.Trials[3]; rec.RepeatOf == nil || *rec.RepeatOf != 1 || rec.ParetoOptimal {
		t.Fatalf("trial 3 record: repeat_of %v, pareto_optimal %v", rec.RepeatOf, rec.ParetoOptimal)
	}
	if n := len(res.HypervolumeHistory); n != 4 {
		t.Fatalf("history has %d points, want 4", n)
	}

	// Trial 2 does not hold up: its repeat fails. It drops off, and the
	// hypervolume falls with it.
	before := r.Front().Hypervolume
	fold(t, r, withParams(failed(4, "oom"), 4, 1))
	doc = r.Front()
	if got := frontTrials(doc); !slices.Equal(got, []int{1}) {
		t.Fatalf("front %v after trial 2's repeat failed, want [1]", got)
	}
	if !(doc.Hypervolume < before) {
		t.Fatalf("hypervolume %v, was %v: should fall when a member drops off", doc.Hypervolume, before)
	}

	// Without repeats in the spec, equal configurations stay separate.
	plain := NewReport(testStudy, testSpec(), t0)
	fold(t, plain, withParams(complete(0, 200, 1000), 1, 1), withParams(complete(1, 100, 3000), 2, 1),
		withParams(complete(3, 140, 3400), 2, 1))
	if got := frontTrials(plain.Front()); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("front without repeats %v, want [1 3]", got)
	}
}
