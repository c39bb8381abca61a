package benchmark

import (
	"slices"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

const (
	kindRejected = sampling.Rejected
	kindFailed   = sampling.Failed
)

// HypervolumeAt is the hypervolume of the feasible points among the first n
// benchmarked trials of r, against the fixed reference point ref.
func HypervolumeAt(r Run, n int, dirs []study.Direction, ref []float64) float64 {
	var pts [][]float64
	for _, p := range r.Points[:min(n, len(r.Points))] {
		if p != nil {
			pts = append(pts, p)
		}
	}
	return study.Hypervolume(pts, dirs, ref)
}

// Summary is the median, minimum and maximum of some values.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize summarises vs (the median of an even count is the mean of the
// middle two).
func Summarize(vs []float64) Summary {
	if len(vs) == 0 {
		return Summary{}
	}
	c := slices.Clone(vs)
	slices.Sort(c)
	med := c[len(c)/2]
	if len(c)%2 == 0 {
		med = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	return Summary{Median: med, Min: c[0], Max: c[len(c)-1], N: len(c)}
}

// DurationQuantile returns the q-quantile (0..1) of ds.
func DurationQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := slices.Clone(ds)
	slices.Sort(c)
	return c[min(len(c)-1, int(q*float64(len(c))))]
}
