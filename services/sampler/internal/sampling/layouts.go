package sampling

import (
	"github.com/sgtune/sgtune/pkg/study"
)

// GPU-layout coverage, a step of gp-ehvi.
//
// The layout (tp × dp × pp, DP attention) decides where on the latency /
// throughput trade-off a server lands: each layout of a GPU budget is
// usually a segment of the front of its own (tp 8 the lowest TTFT, dp 8 the
// most tokens per second, the splits between them). A model fitted to what
// it saw cannot know what an untried split does: the first dp 8 run is
// predicted like the tp 8 runs of the same GPU count with tp 1's TTFT,
// dominated, so it is never tried and the study misses a whole segment of
// the front (in the sampler benchmark, a study that never left tp 8 ended
// at 0.71 of the best known front).
//
// So every other proposal, while there are layouts nobody has tried whose
// GPU count is on the current front, one of them is tried under the best
// settings found for that GPU count (what the rest of a configuration
// learned mostly carries over to another split): the one with the largest
// optimistic hypervolume improvement, among those likely to be valid and
// to launch. Once it ran, the model knows what the layout does.

// coverageMinFeasible is the least probability of being valid and launching
// a layout's first trial needs.
const coverageMinFeasible = 0.3

// coverLayout returns the untried layout to try next, or nil.
func (s *scorer) coverLayout(v *view, conds []*believers) []int {
	cands := layoutCandidates(v, s.f)
	if len(cands) == 0 {
		return nil
	}
	sc := newPredictScratch(s.f.nTrain, len(conds[0].px))
	var pick []int
	bestOpt := 0.0
	for _, cand := range cands {
		x := cand.x
		c := newScored(v, x, cand.pFeasible, s.f.m)
		s.score(c, func(k int) (float64, float64) { return conds[k].predict(c.fx, sc) })
		if c.opt > bestOpt {
			pick, bestOpt = x, c.opt
		}
	}
	return pick
}

// layoutCandidates are the configurations that would try an untried
// layout: for each layout no trial has (pending, rejected and failed ones
// count, and a warm start's), whose GPU count some configuration on the
// current front has, the best trial of that GPU count with its layout
// replaced; those the feasibility model does not expect to be valid and to
// launch are left out.
func layoutCandidates(v *view, f *gpFit) []layoutCandidate {
	tried := map[[4]int]bool{}
	for _, t := range v.trials {
		if t.x != nil {
			tried[v.codec.layoutOf(t.x)] = true
		}
	}
	if v.prior != nil { // what a warm start's studies ran is known too
		for _, t := range v.prior.trials {
			tried[v.codec.layoutOf(t.x)] = true
		}
	}
	// The best trial of each GPU count on the front: f.best is best first,
	// then the front members themselves.
	var onFront []*trial
	for _, i := range study.ParetoFront(f.feas, study.MinDirections(f.m)) {
		onFront = append(onFront, f.feasT[i])
	}
	heads := map[int][]int{}
	for _, t := range append(append([]*trial(nil), f.best...), onFront...) {
		if l := gpuLevel(v.codec, t.x); heads[l] == nil {
			heads[l] = t.x
		}
	}
	levels := map[int]bool{}
	for _, t := range onFront {
		levels[gpuLevel(v.codec, t.x)] = true
	}
	var out []layoutCandidate
	base := v.codec.baseline()
	for _, l := range v.codec.layouts() {
		if tried[l] {
			continue
		}
		lvl := gpuLevel(v.codec, v.codec.withLayout(base, l))
		if !levels[lvl] {
			continue
		}
		x := v.codec.withLayout(heads[lvl], l)
		if _, dup := v.seen[keyOf(x)]; dup {
			continue
		}
		if p := v.feas.pFeasible(x, 1); p >= coverageMinFeasible {
			out = append(out, layoutCandidate{x, p})
		}
	}
	return out
}

// layoutCandidate is a configuration trying an untried layout and its
// probability of being valid and launching.
type layoutCandidate struct {
	x         []int
	pFeasible float64
}

// gpuLevel is log2 of the GPUs x occupies (codec.features' derived feature).
func gpuLevel(c *codec, x []int) int {
	f := c.features(x)
	return f[len(f)-1]
}
