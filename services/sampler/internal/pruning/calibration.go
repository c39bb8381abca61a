package pruning

import (
	"math"
	"slices"
)

// Calibration learns how a trial's finished objective values relate to
// what it had measured at each checkpoint, from the study's own finished
// trials: a partial measurement is biased (the first requests of a closed
// loop arrive together and queue behind one another's prefill; a server
// ramps up), and by how much depends on the server and the workload, not
// only on the number of requests. For each checkpoint step and objective it
// keeps the ratios final/partial seen so far; the pruner then grants a
// running trial the most favourable ratio any finished trial showed at that
// step (widened by the noise floor), instead of the noise model's band.
type Calibration struct {
	// ratios[step][objective] are final/partial ratios of finished trials.
	ratios map[int][][]float64
}

// MinCalibration is how many finished trials a step needs before its
// ratios replace the noise model; below MaxCalibration the noise model's
// band is still granted when it is the wider.
const (
	MinCalibration = 5
	MaxCalibration = 20
)

// Add records a finished trial: its objective values at a checkpoint step
// and when it finished (objective order; ratios of values that are not
// both positive and finite are skipped).
func (c *Calibration) Add(step int, partial, final []float64) {
	if c.ratios == nil {
		c.ratios = map[int][][]float64{}
	}
	rs := c.ratios[step]
	if rs == nil {
		rs = make([][]float64, len(final))
	}
	for k := range min(len(partial), len(final), len(rs)) {
		p, f := partial[k], final[k]
		if p > 0 && f > 0 && !math.IsInf(p, 0) && !math.IsInf(f, 0) {
			rs[k] = append(rs[k], f/p)
		}
	}
	c.ratios[step] = rs
}

// band returns the most favourable final/partial ratio seen at step for
// objective k (the largest for a maximised one, the smallest for a
// minimised one) and how many trials it rests on.
func (c *Calibration) band(step, k int, maximize bool) (ratio float64, n int) {
	if c == nil || c.ratios == nil {
		return math.NaN(), 0
	}
	rs := c.ratios[step]
	if k >= len(rs) || len(rs[k]) == 0 {
		return math.NaN(), 0
	}
	// The most favourable ratio any finished trial showed: leaving out a
	// tail (the 10 % most favourable) stopped twice as many trials on the
	// simulator but lost configurations that would have joined the front
	// (docs/benchmarks.md, early stopping).
	if maximize {
		return slices.Max(rs[k]), len(rs[k])
	}
	return slices.Min(rs[k]), len(rs[k])
}

// Samples is how many finished trials step k of the calibration rests on
// (the fewest over the objectives).
func (c *Calibration) Samples(step int) int {
	if c == nil || c.ratios == nil {
		return 0
	}
	n := -1
	for _, r := range c.ratios[step] {
		if n < 0 || len(r) < n {
			n = len(r)
		}
	}
	return max(n, 0)
}
