package sampling

import (
	"math"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
)

// gp-ehvi, the default algorithm: multi-objective Bayesian optimisation
// over the categorical space.
//
//  1. Startup: until spec.Sampler.StartupTrials trials were benchmarked (or
//     fewer than two results are feasible), SGLang's defaults with half the
//     parameters set at random, drawn again while the feasibility model
//     says it is likely to be rejected or to fail (feasibleRandom).
//  2. A Gaussian process per objective (gp.go: overlap kernel with one
//     relevance weight per parameter, numeric values ordered, plus the GPU
//     count as a derived feature; fitted by marginal likelihood) on the log
//     of each positive objective, trained on the feasible results (at most
//     maxGPTrain: the best half and the newest).
//     Trials in flight join as "constant liars" (observed one posterior
//     standard deviation worse than their predicted mean), so a batch
//     spreads out: near a pending trial the model is certain and expects
//     nothing better.
//  3. Layouts: every other proposal, while some GPU layout (tp × dp × pp)
//     whose GPU count is on the front was never tried, the most promising
//     of them under the best settings found for that GPU count
//     (layouts.go).
//  4. Candidates: every single-parameter change of the best trials, every
//     two-parameter change of the best one (a sample of them in large
//     studies), random 2–3-parameter mutations of the best trials, draws
//     from MOTPE's Parzen estimator of the best trials, and uniform draws;
//     none proposed before.
//  5. Each candidate's score is its expected hypervolume improvement
//     (Monte Carlo over the GP posterior, in the objectives' own units,
//     against the reporter's fixed reference point, study.ReferencePoint on
//     the baseline) times the probability that it violates no constraint
//     (feasibility.go: what rejections, failures and SLO misses taught).
//     The best three are climbed on that score, one parameter at a time
//     (climb.go), and the best of all wins; when nothing is expected to add
//     even 0.3 % to the front's hypervolume, the optimistic choice (2
//     standard deviations towards better) does, else the most uncertain
//     likely-feasible one.

const (
	ehviSamples    = 32
	maxGPTrain     = 80
	maxHyperTrain  = 64
	maxPairCands   = 200 // two-parameter changes scored once the GP is large
	neighbourHeads = 6
	mutationCands  = 160
	tpeCands       = 96
	uniformCands   = 160
)

// gpEHVI is the gp-ehvi algorithm. Its state: each objective's last
// fitted GP hyperparameters, the training-set size at the last
// hyperparameter search, and the models fitted for the history's current
// version (reused for every proposal of a batch: only the trials in flight
// change between them).
type gpEHVI struct {
	theta   [][]float64 // per objective: relevance weights
	noise   []float64
	add     []float64 // per objective: the additive share (-1 before the first fit)
	fitN    int
	fit     *gpFit
	version int
}

// gpFit is the models of one history version.
type gpFit struct {
	m      int
	dirs   []study.Direction
	logT   []bool
	models []*gp
	nTrain int
	best   []*trial // heads of the candidate search, best first
	// tried[j][i] reports whether value i of parameter j is in the
	// training set (novelty, below).
	tried [][]bool
	feas  [][]float64 // feasible results (minimisation form)
	feasT []*trial    // the trials of feas, in the same order
	large bool
}

func newGPEHVI(objectives int) *gpEHVI {
	a := &gpEHVI{theta: make([][]float64, objectives), noise: make([]float64, objectives), add: make([]float64, objectives), version: -1}
	for k := range a.add {
		a.add[k] = -1
	}
	return a
}

func (a *gpEHVI) propose(v *view) ([]int, string, map[string]string) {
	if v.inStartup() {
		return v.startupDraw(), SamplerStartup, nil
	}
	x := a.sample(v)
	if x == nil {
		return nil, "", nil
	}
	return x, study.AlgoGPEHVI, nil
}

// fwd and back map an objective's raw value to the GP's output scale (log
// when every training value is positive) and back.
func (f *gpFit) fwd(v float64, k int) float64 {
	if f.logT[k] {
		return math.Log(v)
	}
	return v
}

func (f *gpFit) back(u float64, k int) float64 {
	if f.logT[k] {
		return math.Exp(u)
	}
	return u
}

// fitModels fits one GP per objective to the feasible results.
func (a *gpEHVI) fitModels(v *view) *gpFit {
	m := len(v.spec.Objectives)
	f := &gpFit{m: m, dirs: v.spec.Directions(), logT: make([]bool, m), models: make([]*gp, m)}
	// Training data: feasible results (the best and the newest when many).
	var train []*trial
	for _, t := range v.trials {
		if t.feasible && t.x != nil && len(t.y) == m {
			train = append(train, t)
			f.feas, f.feasT = append(f.feas, t.y), append(f.feasT, t)
		}
	}
	// The best feasible trials, by non-dominated rank then hypervolume
	// contribution: the heads of the neighbourhood search and half of a
	// large training set.
	nBest := min(len(train), max(neighbourHeads, gamma(len(train))))
	if len(train) > maxGPTrain {
		nBest = max(nBest, maxGPTrain/2)
	}
	rank := selectBest(f.feas, nBest)
	for _, j := range rank {
		f.best = append(f.best, train[j])
	}
	if nb := max(neighbourHeads, gamma(len(f.best))); len(f.best) > nb {
		f.best = f.best[:nb]
	}
	train = pickTraining(train, rank, maxGPTrain)
	// Trials stopped early (sampler.early_stop) teach the surrogate what
	// they measured: their partial objectives, dominated when they were
	// stopped. They are never heads of the search nor on the front below.
	for _, t := range v.trials {
		if t.status == statusPruned && t.x != nil && len(t.partial) == m && allFinite(t.partial) && len(train) < maxGPTrain {
			c := *t
			c.y = t.partial
			train = append(train, &c)
		}
	}
	f.nTrain, f.large = len(train), len(train) >= maxGPTrain
	for k := range m {
		f.logT[k] = true
		for _, t := range train {
			if study.MinFormValue(t.y[k], f.dirs[k]) <= 0 {
				f.logT[k] = false
			}
		}
	}
	xs := make([][]int, len(train))
	f.tried = make([][]bool, v.codec.dims())
	for j := range f.tried {
		f.tried[j] = make([]bool, len(v.codec.values[j]))
	}
	for i, t := range train {
		xs[i] = v.codec.features(t.x)
		for j, val := range t.x {
			f.tried[j][val] = true
		}
	}
	dist := v.codec.featureDist()
	for k := range m {
		ys := make([]float64, len(train))
		for i, t := range train {
			ys[i] = f.fwd(study.MinFormValue(t.y[k], f.dirs[k]), k)
		}
		hx, hy := xs, ys
		if len(hx) > maxHyperTrain {
			hx, hy = hx[len(hx)-maxHyperTrain:], hy[len(hy)-maxHyperTrain:]
		}
		// Hyperparameters: two sweeps the first time, then one per new
		// result while the training set is small, and once it is large
		// whenever it grew by an eighth since the last search.
		sweeps := 2
		if a.theta[k] != nil {
			sweeps = 1
			if len(train) > maxHyperTrain && len(train) < a.fitN+max(1, a.fitN/8) {
				sweeps = 0
			}
		}
		g := fitGPw(hx, hy, dist, a.theta[k], a.noise[k], a.add[k], sweeps)
		a.theta[k], a.noise[k], a.add[k] = g.theta, g.noise, g.w
		if len(hx) != len(xs) {
			g = fitGPw(xs, ys, dist, g.theta, g.noise, g.w, 0)
		}
		f.models[k] = g
	}
	if a.fitN == 0 || len(train) >= a.fitN+max(1, a.fitN/8) {
		a.fitN = len(train)
	}
	return f
}

// noveltyVar is the variance (in units of an objective's spread) a
// candidate gains per parameter value it has that no training result has.
// A GP over categorical values learns how much a parameter matters only
// from the values it saw: one that barely varied gets a small relevance
// weight, and then a value never tried is predicted with confidence to be
// like the tried ones (dp 8 like dp 1). The added variance lets the
// acquisition try such values.
const noveltyVar = 0.15

// novelty is the variance a candidate gains from its untried values.
func (f *gpFit) novelty(x []int) float64 {
	n := 0
	for j, v := range x {
		if !f.tried[j][v] {
			n++
		}
	}
	return noveltyVar * float64(n)
}

// pendingLie is how much worse than predicted (in posterior standard
// deviations) the trials in flight are assumed to come out while a batch is
// proposed ("constant liar", pessimistic): believed at their predicted mean
// only, a trial in flight shrinks its neighbours' variance but not their
// mean, and through the services a batch proposed the same one-parameter
// change on two or three near-identical heads (docs/benchmarks.md: with the
// lie, sim-h100 through the services 0.938 / 0.996 at 50 / 100 trials, from
// 0.918–0.927 / 0.956–0.990).
const pendingLie = 1.0

// maxBelievers bounds the trials in flight that condition the models
// (constant liars, pendingLie); the newest count, the others still join the
// front at their predicted values.
const maxBelievers = 32

// ehviShortlist is how many candidates, the best by optimistic improvement
// and by uncertainty, get the Monte Carlo expected hypervolume improvement.
const ehviShortlist = 64

// sample proposes one configuration, or nil to fall back to random.
func (a *gpEHVI) sample(v *view) []int {
	if a.fit == nil || a.version != v.version {
		a.fit, a.version = a.fitModels(v), v.version
	}
	f := a.fit
	m := f.m
	ref := refPoint(v.all, f.dirs)
	if ref == nil || f.nTrain < 2 {
		return v.startupDraw()
	}
	var pending [][]int
	for _, t := range v.trials {
		if t.status == statusPending && t.x != nil {
			pending = append(pending, v.codec.features(t.x))
		}
	}
	// The front to improve: feasible results plus the believed values of
	// the trials in flight, whose newest also condition the models near
	// them (constant liars: observed pendingLie standard deviations worse
	// than predicted), so a batch spreads out instead of piling onto one
	// spot.
	pts := append([][]float64(nil), f.feas...)
	kbuf, vbuf := make([]float64, f.nTrain), make([]float64, f.nTrain)
	for _, x := range pending {
		p := make([]float64, m)
		for k := range m {
			p[k] = study.MinFormValue(f.back(f.models[k].mean(x, kbuf, vbuf), k), f.dirs[k])
		}
		pts = append(pts, p)
	}
	front := nonDominated(pts)
	sortFront(front)
	conds := make([]*believers, m)
	for k := range m {
		conds[k] = newLiars(f.models[k], pending[max(0, len(pending)-maxBelievers):], -pendingLie*optSign(f.dirs[k]))
	}

	sc0 := &scorer{f: f, front: front, ref: ref, p: make([]float64, m)}
	score := sc0.score
	// A GPU layout nobody has tried, every other proposal while some are
	// left (layouts.go).
	if len(v.trials)%2 == 0 {
		if x := sc0.coverLayout(v, conds); x != nil {
			return x
		}
	}
	cands := candidates(v, f.best, f.large)
	if len(cands) == 0 {
		return nil
	}
	// Every candidate is scored on the models fitted to the results: its
	// optimistic improvement and its uncertainty; the shortlist (the best
	// by optimism, then by uncertainty) is scored again with the trials in
	// flight believed, and gets the Monte Carlo expected improvement.
	var list []*scored
	for _, x := range cands {
		pf := v.feas.pFeasible(x, 1)
		if pf < 1e-3 {
			continue
		}
		c := newScored(v, x, pf, m)
		score(c, func(k int) (float64, float64) { return f.models[k].predict(c.fx, kbuf, vbuf) })
		list = append(list, c)
	}
	if len(list) == 0 {
		return nil
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].opt > list[j].opt })
	short := list[:min(len(list), ehviShortlist)]
	if len(list) > ehviShortlist {
		rest := append([]*scored(nil), list[ehviShortlist:]...)
		sort.SliceStable(rest, func(i, j int) bool { return rest[i].unc > rest[j].unc })
		short = append(short[:len(short):len(short)], rest[:min(len(rest), ehviShortlist/4)]...)
	}
	sc := newPredictScratch(f.nTrain, len(conds[0].px))
	for _, c := range short {
		score(c, func(k int) (float64, float64) { return conds[k].predict(c.fx, sc) })
	}
	opt, explore := short[0], short[0]
	for _, c := range short {
		if c.opt > opt.opt {
			opt = c
		}
		if c.unc > explore.unc {
			explore = c
		}
	}
	z := make([][]float64, ehviSamples)
	for i := range z {
		z[i] = make([]float64, m)
		for k := range z[i] {
			z[i][k] = v.rng.NormFloat64()
		}
	}
	var best []int
	bestScore := 0.0
	for _, c := range short {
		if c.ehvi = sc0.expected(c, z); c.ehvi > bestScore {
			best, bestScore = c.x, c.ehvi
		}
	}
	// The best are climbed on the acquisition (climb.go).
	if x, score := sc0.climb(v, short, conds, sc, z); x != nil && score > bestScore {
		best, bestScore = x, score
	}
	// When nothing is expected to improve the front by a meaningful amount,
	// even after the climb, the model is likely overconfident around what it
	// has seen: take the optimistic choice (the hypervolume improvement of
	// the posterior mean shifted optimism standard deviations towards
	// better), then the most uncertain one.
	if bestScore < stallFraction*study.HypervolumeMin(front, ref) {
		if opt.opt > 0 {
			return opt.x
		}
		return explore.x
	}
	return best
}

// scored is a candidate with its predictions and scores.
type scored struct {
	x, fx    []int
	pf       float64 // probability of violating no constraint
	mu, sd   []float64
	opt, unc float64 // optimistic improvement and uncertainty, times pf
	ehvi     float64 // expected hypervolume improvement, times pf (expected)
}

func newScored(v *view, x []int, pf float64, m int) *scored {
	return &scored{x: x, fx: v.codec.features(x), pf: pf, mu: make([]float64, m), sd: make([]float64, m)}
}

// scorer scores candidates against the front to improve.
type scorer struct {
	f     *gpFit
	front [][]float64
	ref   []float64
	p     []float64 // scratch
}

// score sets c's predictions (from predict, plus the novelty variance of
// its untried values), its optimistic hypervolume improvement and its
// uncertainty.
func (s *scorer) score(c *scored, predict func(k int) (float64, float64)) {
	f := s.f
	c.opt, c.unc = 0, 0
	nov := f.novelty(c.x)
	for k := range f.m {
		c.mu[k], c.sd[k] = predict(k)
		if nov > 0 {
			sc := f.models[k].sc
			c.sd[k] = math.Sqrt(min(c.sd[k]*c.sd[k]+nov*sc*sc, sc*sc*(1+f.models[k].noise)))
		}
		c.unc += c.sd[k] / f.models[k].sc
		s.p[k] = study.MinFormValue(f.back(c.mu[k]+optimism*c.sd[k]*optSign(f.dirs[k]), k), f.dirs[k])
	}
	c.opt = c.pf * hvi(s.front, s.p, s.ref)
	c.unc *= c.pf
}

// expected is c's Monte Carlo expected hypervolume improvement over z (one
// standard normal draw per objective each), times its pf.
func (s *scorer) expected(c *scored, z [][]float64) float64 {
	f := s.f
	ehvi := 0.0
	for _, zk := range z {
		for k := range f.m {
			s.p[k] = study.MinFormValue(f.back(c.mu[k]+c.sd[k]*zk[k], k), f.dirs[k])
		}
		ehvi += hvi(s.front, s.p, s.ref)
	}
	return c.pf * ehvi / float64(len(z))
}

// optimism is how many standard deviations the optimistic choice shifts;
// stallFraction is the expected improvement, as a fraction of the front's
// hypervolume, below which the optimistic choice replaces it.
const (
	optimism      = 2.0
	stallFraction = 0.003
)

// optSign is the sign of "better" for a raw objective value.
func optSign(d study.Direction) float64 {
	if d == study.Maximize {
		return 1
	}
	return -1
}

// pickTraining keeps at most n trials: the best (the first n/2 indices of
// ranked) and the newest.
func pickTraining(ts []*trial, ranked []int, n int) []*trial {
	if len(ts) <= n {
		return ts
	}
	keep := map[int]bool{}
	for _, i := range ranked[:min(len(ranked), n/2)] {
		keep[i] = true
	}
	for i := len(ts) - 1; i >= 0 && len(keep) < n; i-- {
		keep[i] = true
	}
	var out []*trial
	for i, t := range ts {
		if keep[i] {
			out = append(out, t)
		}
	}
	return out
}

// refPoint is the reporter's fixed reference point (study.ReferencePoint on
// trial 0 when it completed, else the lowest-numbered completed trial), in
// minimisation form; nil when no trial has completed with objectives.
func refPoint(trials []*trial, dirs []study.Direction) []float64 {
	var anchor *trial
	for _, t := range trials {
		if t.status == statusCompleted && t.ownY != nil && (anchor == nil || t.number < anchor.number) {
			anchor = t
		}
	}
	if anchor == nil {
		return nil
	}
	// The anchor's own first measurement: repeats do not move the point.
	vals := make([]float64, len(anchor.ownY))
	for k, v := range anchor.ownY {
		vals[k] = study.MinFormValue(v, dirs[k])
	}
	ref := study.ReferencePoint(vals, dirs)
	for k := range ref {
		ref[k] = study.MinFormValue(ref[k], dirs[k])
	}
	return ref
}
