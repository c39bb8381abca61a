package capacity

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Verdict on one level.
type Verdict int

// Verdicts.
const (
	// Fail: some metric is above its bound.
	Fail Verdict = iota
	// Pass: every metric is within its bound.
	Pass
	// Uncertain: the point estimate says one thing, but the level's own
	// sampling noise could say the other (see Judge).
	Uncertain
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Uncertain:
		return "uncertain"
	}
	return "fail"
}

// SLO maps a latency metric (p99_ttft_ms, ...) to its upper bound.
type SLO map[string]float64

// Judgement is the verdict on a level and how far it was from the bounds.
type Judgement struct {
	Verdict Verdict
	// Margin is the worst ratio of a measured metric to its bound: at most 1
	// meets every bound (+Inf: a metric was not measured).
	Margin float64
	// Worst names the metric that set the margin.
	Worst string
	// PassShare is the share of bootstrap resamples meeting every bound.
	PassShare float64
}

// Margin returns the worst measured/bound ratio and the metric it comes from.
func Margin(slo SLO, metrics map[string]float64) (float64, string) {
	worst, name := math.Inf(-1), ""
	for _, k := range sortedKeys(slo) {
		v, ok := metrics[k]
		r := v / slo[k]
		if !ok || math.IsNaN(r) {
			r = math.Inf(1)
		}
		if r > worst {
			worst, name = r, k
		}
	}
	return worst, name
}

// uncertainShare: a level is Uncertain when the share of its bootstrap
// resamples that meet every bound lies strictly between uncertainShare and
// 1 - uncertainShare, i.e. a 90 % bootstrap interval of its worst metric
// straddles the bound.
const uncertainShare = 0.05

// DefaultBootstrap is the number of resamples Judge draws.
const DefaultBootstrap = 200

// Judge gives the verdict on a level from its point metrics and its
// sampling noise: resample computes the metrics of one bootstrap resample
// of the level's requests (drawn with rng, with replacement). A verdict
// whose resamples disagree with it more than 5 % of the time either way is
// Uncertain: the caller measures the level again.
func Judge(slo SLO, point map[string]float64, resample func(*rand.Rand) map[string]float64, rng *rand.Rand, n int) Judgement {
	m, worst := Margin(slo, point)
	j := Judgement{Verdict: Fail, Margin: m, Worst: worst}
	if m <= 1 {
		j.Verdict = Pass
	}
	if resample == nil || n <= 0 {
		j.PassShare = float64(j.Verdict)
		return j
	}
	pass := 0
	for range n {
		if rm, _ := Margin(slo, resample(rng)); rm <= 1 {
			pass++
		}
	}
	j.PassShare = float64(pass) / float64(n)
	if j.PassShare > uncertainShare && j.PassShare < 1-uncertainShare {
		j.Verdict = Uncertain
	}
	return j
}

// highestQuantile is the highest quantile an SLO bounds (p99 -> 0.99,
// median/mean -> 0.5).
func highestQuantile(slo SLO) float64 {
	q := 0.5
	for k := range slo {
		if p, ok := strings.CutPrefix(k, "p"); ok {
			var v int
			for _, c := range p {
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + int(c-'0')
			}
			if v > 0 && v < 100 {
				q = max(q, float64(v)/100)
			}
		}
	}
	return q
}

// TailSamples is how many requests a level needs beyond its highest bounded
// percentile for that percentile to mean something: with n requests, p99
// is interpolated between the ~n/100 largest, so n = 300 puts 3 requests
// above it.
const TailSamples = 3

// Requests is how many measured requests a level needs: at least base (the
// workload's num_prompts), TailSamples beyond the SLO's highest percentile,
// and two per stream (so that most requests start in steady state, not in
// the first wave).
func Requests(slo SLO, level float64, base int) int {
	q := highestQuantile(slo)
	tail := int(math.Ceil(TailSamples/(1-q) - 1e-9))
	return max(base, tail, int(math.Ceil(2*level)))
}

func sortedKeys(m SLO) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
