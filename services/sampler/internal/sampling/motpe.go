package sampling

import (
	"math"
	"math/rand/v2"

	"github.com/sgtune/sgtune/pkg/study"
)

// motpe: MOTPE in the style of Optuna's multi-objective TPE, over the
// categorical space (gp-ehvi keeps its Parzen estimator of the good trials
// as one source of candidates, see gpehvi.go):
//
//  1. The first spec.Sampler.StartupTrials finished trials are random.
//  2. The finished trials are split: "good" are the best gamma(n) feasible
//     results (whole fronts of the non-dominated sort, the overflowing
//     front by greedy hypervolume contribution); "bad" is everything else:
//     the other feasible results, every infeasible trial (rejected by the
//     validator, duplicate, failed with oom/crash/timeout, SLO missed, like
//     Optuna's constraints_func) and every pending trial (constant liar: a
//     trial in flight is assumed bad, so a batch spreads out instead of
//     piling onto one promising spot).
//  3. A multivariate categorical Parzen estimator is fitted to each set
//     (l to the good, g to the bad): a mixture with one product kernel per
//     observation plus a uniform prior component.
//  4. Candidates are drawn from l and the one maximising l(x)/g(x) that was
//     never proposed wins; the score multiplies the multivariate ratio with
//     the ratio of the product of marginals (univariate TPE), which on the
//     toy problem of the tests did at least as well as either alone.

// priorWeight is the weight of the uniform prior component and the source of
// the kernels' smoothing (Optuna's default).
const priorWeight = 1.0

// gamma is the number of good trials among n finished ones: 15 %, at least
// 1, at most 25.
func gamma(n int) int { return min(max(1, int(math.Ceil(0.15*float64(n)))), 25) }

// splitGoodBad partitions the trials with a configuration. Pending trials are
// bad (constant liar); good are at most gamma(finished) feasible trials.
func splitGoodBad(trials []*trial) (good, bad []*trial) {
	var feas []*trial
	finished := 0
	for _, t := range trials {
		if t.x == nil {
			continue
		}
		if t.status != statusPending {
			finished++
		}
		if t.feasible {
			feas = append(feas, t)
		}
	}
	pts := make([][]float64, len(feas))
	for i, t := range feas {
		pts[i] = t.y
	}
	isGood := map[*trial]bool{}
	for _, i := range selectBest(pts, min(gamma(finished), len(feas))) {
		isGood[feas[i]] = true
		good = append(good, feas[i])
	}
	for _, t := range trials {
		if t.x != nil && !isGood[t] {
			bad = append(bad, t)
		}
	}
	return good, bad
}

// motpe is the motpe algorithm; it keeps no state between proposals.
type motpe struct {
	// candidates drawn from the good model per proposal.
	candidates int
}

func (a *motpe) propose(v *view) ([]int, string, map[string]string) {
	trials := v.trials
	finished := 0
	for _, t := range trials {
		if t.x != nil && t.status != statusPending {
			finished++
		}
	}
	if finished < v.spec.Sampler.StartupTrials {
		return v.startupDraw(), SamplerStartup, nil
	}
	good, bad := splitGoodBad(trials)
	l := newParzen(v.codec, xsOf(good))
	g := newParzen(v.codec, xsOf(bad))
	var best []int
	bestScore := math.Inf(-1)
	var fallback []int
	for range a.candidates {
		x := l.sample(v.rng)
		if _, dup := v.seen[keyOf(x)]; dup {
			fallback = x
			continue
		}
		// The multivariate ratio sees interactions (tp × dp × pp too large);
		// the product of marginal ratios generalises per parameter ("pp 8 is
		// mostly bad") to configurations far from every observation.
		score := l.logpdf(x) - g.logpdf(x) + l.logpdfMarginal(x) - g.logpdfMarginal(x)
		if score > bestScore {
			best, bestScore = x, score
		}
	}
	if best == nil {
		best = fallback
	}
	if best == nil {
		return nil, "", nil
	}
	return best, study.AlgoMOTPE, nil
}

func xsOf(ts []*trial) [][]int {
	out := make([][]int, len(ts))
	for i, t := range ts {
		out[i] = t.x
	}
	return out
}

// parzen is a multivariate categorical Parzen estimator: a mixture of one
// product kernel per observation (weight 1 each) and a uniform prior
// component (weight priorWeight). Observation i's kernel puts mass
// (1+a)/(1+a·K) on its own value of a K-valued parameter and a/(1+a·K) on
// every other, with a = priorWeight/(n+1) (Optuna's categorical kernel).
type parzen struct {
	obs     [][]int
	k       []int
	logHit  []float64
	logMiss []float64
	logUni  float64 // log of the prior component's density (all parameters)
	logWObs float64 // log mixture weight of one observation
	logWPri float64 // log mixture weight of the prior
	hitP    []float64
	marg    [][]float64
}

func newParzen(c *codec, obs [][]int) *parzen {
	n := len(obs)
	a := priorWeight / float64(n+1)
	p := &parzen{obs: obs}
	total := float64(n) + priorWeight
	p.logWObs = math.Log(1 / total)
	p.logWPri = math.Log(priorWeight / total)
	for _, v := range c.values {
		k := float64(len(v))
		p.k = append(p.k, len(v))
		p.logHit = append(p.logHit, math.Log((1+a)/(1+a*k)))
		p.logMiss = append(p.logMiss, math.Log(a/(1+a*k)))
		p.hitP = append(p.hitP, (1+a)/(1+a*k))
		p.logUni -= math.Log(k)
	}
	return p
}

// sample draws one configuration.
func (p *parzen) sample(rng *rand.Rand) []int {
	x := make([]int, len(p.k))
	comp := rng.IntN(len(p.obs) + 1) // components are equally weighted when priorWeight == 1
	if priorWeight != 1 {
		u := rng.Float64() * (float64(len(p.obs)) + priorWeight)
		comp = min(int(u), len(p.obs))
	}
	if comp == len(p.obs) {
		for j, k := range p.k {
			x[j] = rng.IntN(k)
		}
		return x
	}
	o := p.obs[comp]
	for j, k := range p.k {
		if k == 1 || rng.Float64() < p.hitP[j] {
			x[j] = o[j]
			continue
		}
		v := rng.IntN(k - 1)
		if v >= o[j] {
			v++
		}
		x[j] = v
	}
	return x
}

// logpdf is the log density of x.
func (p *parzen) logpdf(x []int) float64 {
	terms := make([]float64, 0, len(p.obs)+1)
	terms = append(terms, p.logWPri+p.logUni)
	for _, o := range p.obs {
		s := p.logWObs
		for j, v := range x {
			if o[j] == v {
				s += p.logHit[j]
			} else {
				s += p.logMiss[j]
			}
		}
		terms = append(terms, s)
	}
	return logSumExp(terms)
}

func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// marginals returns (and caches) each parameter's marginal distribution
// under the mixture.
func (p *parzen) marginals() [][]float64 {
	if p.marg != nil {
		return p.marg
	}
	n := float64(len(p.obs))
	tot := n + priorWeight
	p.marg = make([][]float64, len(p.k))
	for j, k := range p.k {
		m := make([]float64, k)
		miss := math.Exp(p.logMiss[j])
		for c := range m {
			m[c] = priorWeight/tot/float64(k) + n/tot*miss
		}
		for _, o := range p.obs {
			m[o[j]] += (p.hitP[j] - miss) / tot
		}
		p.marg[j] = m
	}
	return p.marg
}

// logpdfMarginal is the log of the product of x's marginal probabilities:
// the univariate (independent-parameter) TPE density.
func (p *parzen) logpdfMarginal(x []int) float64 {
	m := p.marginals()
	s := 0.0
	for j, v := range x {
		s += math.Log(m[j][v])
	}
	return s
}
