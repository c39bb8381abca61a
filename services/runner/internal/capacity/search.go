// Package capacity finds the largest load a server sustains within latency
// SLOs: a bracketing search over load levels (grow or shrink until one level
// meets the SLO and one does not, then narrow the bracket) and the verdict
// on one measured level, with its noise. It is plain Go: the load generator
// measures the levels it asks for.
package capacity

import (
	"fmt"
	"math"
)

// Defaults of a Config.
const (
	DefaultMaxLevels = 8
	// DefaultTolerance stops the search once the bracket [highest level that
	// met the SLO, lowest that missed it] is this narrow, relative: the true
	// capacity lies inside, so the answer (the bracket's low end) is within
	// this much of it.
	DefaultTolerance = 0.05
	// DefaultMaxRepeats is how often a level whose verdict is within noise
	// of a bound is measured again (samples pooled) before its point
	// estimate decides.
	DefaultMaxRepeats = 1
)

// Steps bound how far one step may grow or shrink the level before the
// bracket is found, whatever the margin predicts.
const (
	minStep = 1.5
	maxStep = 8
)

// Config describes a search.
type Config struct {
	// Min and Max bound the levels (Min > 0, Max >= Min).
	Min, Max float64
	// Integer levels (concurrency); otherwise any positive number (a rate).
	Integer bool
	// MaxLevels caps the levels measured, repeats included (default 8).
	MaxLevels int
	// Tolerance is the relative bracket width that ends the search (default 0.05).
	Tolerance float64
	// MaxRepeats is how often an uncertain level is repeated (default 1; -1: never).
	MaxRepeats int
}

// Step is the next level to measure.
type Step struct {
	Level float64
	// Repeat is true when the level is measured again: the caller pools the
	// new samples with the earlier ones and judges them together.
	Repeat bool
}

// Search is the state of one capacity search. Not safe for concurrent use.
type Search struct {
	cfg Config
	// lo is the highest level that met the SLO (0: none yet), hi the lowest
	// that missed it (+Inf: none yet); mLo and mHi are their margins.
	lo, hi   float64
	mLo, mHi float64
	// prevLo and prevHi are the previous ends on each side (0: none), whose
	// margins with the current ends' predict where the margin crosses 1
	// before the bracket is found.
	prevLo, prevMLo float64
	prevHi, prevMHi float64
	levels          int
	repeats         map[float64]int
	pending         *Step // a repeat asked for
	lastStep        string
}

// New checks cfg and returns a search.
func New(cfg Config) (*Search, error) {
	switch {
	case !(cfg.Min > 0) || math.IsInf(cfg.Max, 0) || cfg.Max < cfg.Min:
		return nil, fmt.Errorf("capacity: want 0 < min <= max, got min %v, max %v", cfg.Min, cfg.Max)
	case cfg.Integer && (cfg.Min != math.Trunc(cfg.Min) || cfg.Max != math.Trunc(cfg.Max)):
		return nil, fmt.Errorf("capacity: integer levels need whole bounds, got %v..%v", cfg.Min, cfg.Max)
	}
	if cfg.MaxLevels <= 0 {
		cfg.MaxLevels = DefaultMaxLevels
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.MaxRepeats == 0 {
		cfg.MaxRepeats = DefaultMaxRepeats
	}
	return &Search{cfg: cfg, hi: math.Inf(1), repeats: map[float64]int{}}, nil
}

// Levels is the number of levels measured so far, repeats included.
func (s *Search) Levels() int { return s.levels }

// Capacity is the highest level that met the SLO; ok is false when none did.
func (s *Search) Capacity() (level float64, ok bool) { return s.lo, s.lo > 0 }

// Next returns the next level to measure; done is true when the search is
// over (the bracket is narrow enough, the bounds are reached, or the levels
// are used up).
func (s *Search) Next() (step Step, done bool) {
	if s.levels >= s.cfg.MaxLevels {
		return Step{}, true
	}
	if s.pending != nil {
		return *s.pending, false
	}
	switch {
	case s.lo == 0 && math.IsInf(s.hi, 1):
		return Step{Level: s.round(math.Sqrt(s.cfg.Min * s.cfg.Max))}, false
	case math.IsInf(s.hi, 1): // every level so far met the SLO: grow
		if s.lo >= s.cfg.Max {
			return Step{}, true
		}
		return Step{Level: s.clampUp(s.lo * stepFor(s.mLo, s.prevLo, s.prevMLo, s.lo))}, false
	case s.lo == 0: // every level so far missed it: shrink
		if s.hi <= s.cfg.Min {
			return Step{}, true
		}
		return Step{Level: s.clampDown(s.hi / stepFor(1/s.mHi, s.hi, 1/s.prevMHi, s.prevHi))}, false
	}
	if s.narrow() {
		return Step{}, true
	}
	return Step{Level: s.inside(s.interpolate())}, false
}

// Observe records the verdict on a level Next returned.
func (s *Search) Observe(level float64, j Judgement) {
	s.levels++
	s.pending = nil
	v := j.Verdict
	if v == Uncertain {
		if s.repeats[level] < s.cfg.MaxRepeats && s.levels < s.cfg.MaxLevels {
			s.repeats[level]++
			s.pending = &Step{Level: level, Repeat: true}
			return
		}
		v = Fail // still within noise: decide by the point estimate
		if j.Margin <= 1 {
			v = Pass
		}
	}
	m := j.Margin
	if math.IsNaN(m) || m <= 0 {
		m = math.SmallestNonzeroFloat64
	}
	switch {
	case v == Pass && level > s.lo:
		s.prevLo, s.prevMLo = s.lo, s.mLo
		s.lo, s.mLo = level, m
	case v == Fail && level < s.hi:
		s.prevHi, s.prevMHi = s.hi, s.mHi
		s.hi, s.mHi = level, m
	}
	if s.lo >= s.hi { // noise contradicted an earlier verdict: trust the newer one at this level
		if v == Pass {
			s.hi, s.mHi = math.Inf(1), 0
		} else {
			s.lo, s.mLo = 0, 0
		}
	}
}

// stepFor is the factor the next level moves by when the bracket is not
// found yet, from the margin m at the bracket's one end so far (the worst
// metric at m times its bound). With one level measured, latency is taken
// to grow in proportion to load: the bound is near level/m. With two on the
// same side (levels a < b, margins ma at a and m at b, in the direction of
// the search), the margin is fitted as a power of the load through both,
// which is exact for a latency that grows as a power of load and overshoots
// (safely: it finds the bracket's other end) for one that grows more slowly.
// The step is clamped either way: saturation makes latency explode.
func stepFor(m, a, ma, b float64) float64 {
	if !(m > 0) {
		return maxStep
	}
	step := 1 / m
	if a > 0 && b > a && ma > 0 && m > ma {
		k := math.Log(m/ma) / math.Log(b/a) // margin ~ level^k
		step = math.Pow(1/m, 1/k)
	}
	if math.IsNaN(step) {
		step = maxStep
	}
	return min(max(step, minStep), maxStep)
}

// interpolate predicts where the margin crosses 1 between the bracket's
// ends, linearly in log(level) and log(margin); every other step bisects
// (in log space) instead, so a margin that explodes past saturation cannot
// keep the bracket from halving.
func (s *Search) interpolate() float64 {
	xl, xh := math.Log(s.lo), math.Log(s.hi)
	mid := math.Exp((xl + xh) / 2)
	if s.lastStep == "interpolate" {
		s.lastStep = "bisect"
		return mid
	}
	yl, yh := math.Log(s.mLo), math.Log(s.mHi)
	if !(yh > yl) || math.IsInf(yl, 0) || math.IsInf(yh, 0) {
		s.lastStep = "bisect"
		return mid
	}
	s.lastStep = "interpolate"
	x := xl + (0-yl)*(xh-xl)/(yh-yl)
	// Keep away from the ends: a step that barely moves the bracket wastes a level.
	lo, hi := xl+0.15*(xh-xl), xh-0.15*(xh-xl)
	return math.Exp(min(max(x, lo), hi))
}

// narrow reports whether the bracket is as narrow as the search needs.
func (s *Search) narrow() bool {
	if s.cfg.Integer && s.hi-s.lo <= 1 {
		return true
	}
	return s.hi/s.lo <= 1+s.cfg.Tolerance
}

func (s *Search) round(x float64) float64 {
	x = min(max(x, s.cfg.Min), s.cfg.Max)
	if s.cfg.Integer {
		x = math.Round(x)
	}
	return x
}

// clampUp is x rounded, above lo and at most Max.
func (s *Search) clampUp(x float64) float64 {
	x = s.round(x)
	if s.cfg.Integer && x <= s.lo {
		x = min(s.lo+1, s.cfg.Max)
	}
	return x
}

// clampDown is x rounded, below hi and at least Min.
func (s *Search) clampDown(x float64) float64 {
	x = s.round(x)
	if s.cfg.Integer && x >= s.hi {
		x = max(s.hi-1, s.cfg.Min)
	}
	return x
}

// inside is x rounded strictly inside the bracket.
func (s *Search) inside(x float64) float64 {
	if !s.cfg.Integer {
		return x
	}
	x = math.Round(x)
	return min(max(x, s.lo+1), s.hi-1)
}
