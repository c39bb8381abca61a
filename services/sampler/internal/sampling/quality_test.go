package sampling

import (
	"github.com/sgtune/sgtune/pkg/study"
	"testing"
)

// TestMOTPEBeatsRandom is a sanity check, not a benchmark: on the toy
// problem, MOTPE's median hypervolume after 40 benchmarked trials beats
// random search's, over a few seeds.
func TestMOTPEBeatsRandom(t *testing.T) {
	t.Parallel()
	const n = 40
	seeds := []int64{1, 2, 3}
	var mo, rnd, ns []float64
	for _, seed := range seeds {
		h, _ := runToy(t, study.AlgoGPEHVI, seed, n, 1)
		mo = append(mo, h)
		h, _ = runToy(t, study.AlgoRandom, seed, n, 1)
		rnd = append(rnd, h)
		h, _ = runToy(t, study.AlgoNSGA2, seed, n, 1)
		ns = append(ns, h)
	}
	t.Logf("hypervolume after %d trials: motpe %.3f (%v), nsga2 %.3f (%v), random %.3f (%v)",
		n, median(mo), mo, median(ns), ns, median(rnd), rnd)
	if median(mo) <= median(rnd) {
		t.Fatalf("motpe median hypervolume %.3f does not beat random %.3f", median(mo), median(rnd))
	}
}

// TestMOTPELearnsRejections: once past its startup trials MOTPE proposes
// fewer configurations the validator rejects than random search does.
func TestMOTPELearnsRejections(t *testing.T) {
	t.Parallel()
	var mo, rnd int
	for _, seed := range []int64{1, 2, 3} {
		_, s := runToy(t, study.AlgoGPEHVI, seed, 40, 1)
		mo += s.Counters().Rejected
		_, s = runToy(t, study.AlgoRandom, seed, 40, 1)
		rnd += s.Counters().Rejected
	}
	t.Logf("rejections over 3 studies of 40 trials: motpe %d, random %d", mo, rnd)
	if mo >= rnd {
		t.Fatalf("motpe was rejected %d times, random %d", mo, rnd)
	}
}
