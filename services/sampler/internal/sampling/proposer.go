package sampling

import (
	"fmt"
	"math/rand/v2"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/study"
)

// proposer is one search algorithm. The study asks it for one
// configuration at a time, each time with every trial so far in the view,
// the pending ones included (the proposals of the current batch among
// them), so an algorithm accounts for trials in flight however it sees fit.
// It owns whatever state it keeps between proposals (fitted
// hyperparameters, goptuna samplers, caches keyed on view.version); the
// record itself it only reads.
//
// propose returns the configuration, the name to record it under (usually
// the algorithm's; "startup" for a startup draw) and extra goptuna system
// attributes for the trial; a nil configuration lets the study draw one at
// random. A configuration proposed before is asked again (the study
// resamples), so an algorithm need not check.
//
// Every outcome kind reaches the view: completed (y, feasible), failed
// (class and cause), rejected (rules), duplicate, and pruned (stopped early,
// with its partial objectives in trial.partial).
type proposer interface {
	propose(v *view) (x []int, name string, attrs map[string]string)
}

// view is what an algorithm sees of the study for one proposal.
type view struct {
	// trials are the trials the algorithm learns from (visible), in record
	// order; all are every trial (for the reference point's anchor).
	trials, all []*trial
	// version counts the outcomes told so far.
	version int
	codec   *codec
	spec    *study.Spec
	feas    *feasibility
	rng     *rand.Rand
	seen    map[string]int
	h       *history
	prior   *Prior
}

// view builds the view of the study for the next proposal and brings the
// feasibility model up to date.
func (s *Study) view() *view {
	trials := s.visible()
	s.feas.update(trials)
	return &view{trials: trials, all: s.h.trials, version: s.h.version, codec: s.codec, spec: &s.spec,
		feas: s.feas, rng: s.rng, seen: s.h.seen, h: s.h, prior: s.prior}
}

// visible returns the trials the algorithm learns from: every trial, or
// with Options.IgnoreInvalid all but the rejected, duplicate and failed ones.
//
// Repeat runs are never visible on their own: their results are folded
// into the original trial's.
func (s *Study) visible() []*trial {
	if !s.ignoreInv && s.spec.Sampler.Repeats <= 0 {
		return s.h.trials
	}
	out := make([]*trial, 0, len(s.h.trials))
	for _, t := range s.h.trials {
		if t.repeatOf != nil {
			continue
		}
		if s.ignoreInv {
			switch t.status {
			case statusRejected, statusDuplicate, statusFailed:
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// newProposer builds the algorithm called algo (a resolved name).
func newProposer(algo string, s *Study, seed int64, logger zerolog.Logger) (proposer, error) {
	switch algo {
	case study.AlgoGPEHVI:
		return newGPEHVI(len(s.spec.Objectives)), nil
	case study.AlgoMOTPE:
		return &motpe{candidates: 64}, nil
	case study.AlgoNSGA2:
		return nsga2{}, nil
	case study.AlgoRandom:
		return randomSearch{}, nil
	case study.AlgoTPE, study.AlgoCMAES, study.AlgoScalarizedTPE:
		return newGoptunaProposer(algo, s.h, seed, logger)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, algo)
}

// randomSearch draws uniformly.
type randomSearch struct{}

func (randomSearch) propose(v *view) ([]int, string, map[string]string) {
	return v.codec.random(v.rng), study.AlgoRandom, nil
}

// counts returns how many visible trials were benchmarked and how many
// are feasible.
func (v *view) counts() (bench, feasible int) {
	for _, t := range v.trials {
		if t.x == nil {
			continue
		}
		if t.status.benchmarked() {
			bench++
		}
		if t.feasible {
			feasible++
		}
	}
	return bench, feasible
}

// inStartup reports whether a model-based algorithm should still make
// startup draws: fewer than spec.Sampler.StartupTrials benchmarked trials
// (counting a warm start's prior trials), or fewer than two feasible ones.
func (v *view) inStartup() bool {
	bench, feasible := v.counts()
	if v.prior != nil {
		bench += v.prior.startupCredit()
		feasible += v.prior.feasibleCount()
	}
	return bench < v.spec.Sampler.StartupTrials || feasible < 2
}

// drawLeastUsed draws an index with probability proportional to
// 1/(1+uses[i]).
func drawLeastUsed(uses []float64, rng *rand.Rand) int {
	total := 0.0
	for _, u := range uses {
		total += 1 / (1 + u)
	}
	r := rng.Float64() * total
	for i, u := range uses {
		if r -= 1 / (1 + u); r < 0 {
			return i
		}
	}
	return len(uses) - 1
}

// startupDraw draws a startup configuration, keeping the first the
// feasibility model does not expect to be rejected or to fail (at most 64
// draws). A draw is SGLang's defaults (the baseline) with a random half of
// the parameters (at least three) set to random values: the defaults are
// known to launch, so the startup trials, which often run in parallel before
// anything is learned, waste fewer runs on configurations that crash, and
// still spread over the whole space.
func (v *view) startupDraw() []int {
	var best []int
	bestP := -1.0
	base := v.codec.baseline()
	d := len(base)
	// Values proposed least so far are drawn most (weight 1/(1+uses)), so
	// the startup trials cover every value of every parameter early: a
	// value never tried is one no model can say anything about.
	uses := make([][]float64, d)
	for j := range uses {
		uses[j] = make([]float64, len(v.codec.values[j]))
	}
	for _, t := range v.all {
		if t.x != nil {
			for j, i := range t.x {
				uses[j][i]++
			}
		}
	}
	for range 64 {
		x := append([]int(nil), base...)
		for _, j := range v.rng.Perm(d)[:min(d, max(3, d/2))] {
			x[j] = drawLeastUsed(uses[j], v.rng)
		}
		if _, dup := v.seen[keyOf(x)]; dup {
			continue
		}
		p := v.feas.pFeasible(x, 1)
		if p > 0.5 {
			return x
		}
		if p > bestP {
			best, bestP = x, p
		}
	}
	return best
}
