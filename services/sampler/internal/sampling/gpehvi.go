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
//     Trials in flight join as "kriging believers" (their predicted mean
//     taken as observed), so a batch spreads out: near a pending trial the
//     model is certain and expects nothing new.
//  3. Candidates: every single-parameter change of the best trials, every
//     two-parameter change of the best one (a sample of them in large
//     studies), random 2–3-parameter mutations of the best trials, draws
//     from MOTPE's Parzen estimator of the best trials, and uniform draws;
//     none proposed before.
//  4. Each candidate's score is its expected hypervolume improvement
//     (Monte Carlo over the GP posterior, in the objectives' own units,
//     against the reporter's fixed reference point, study.ReferencePoint on
//     the baseline) times the probability that it violates no constraint
//     (feasibility.go: what rejections, failures and SLO misses taught).
//     The best wins; when no candidate is expected to add even 0.3 % to the
//     front's hypervolume, the optimistic choice (2 standard deviations
//     towards better) does, else the most uncertain likely-feasible one.

const (
	ehviSamples    = 32
	maxGPTrain     = 80
	maxHyperTrain  = 64
	maxPairCands   = 300 // two-parameter changes scored once the GP is large
	neighbourHeads = 6
	mutationCands  = 160
	tpeCands       = 96
	uniformCands   = 160
)

// gpEHVI is the gp-ehvi algorithm. Its state: each objective's last
// fitted GP hyperparameters and the training-set size at the last
// hyperparameter search.
type gpEHVI struct {
	theta [][]float64 // per objective: relevance weights
	noise []float64
	fitN  int
}

func newGPEHVI(objectives int) *gpEHVI {
	return &gpEHVI{theta: make([][]float64, objectives), noise: make([]float64, objectives)}
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

// sample proposes one configuration, or nil to fall back to random.
func (a *gpEHVI) sample(v *view) []int {
	trials := v.trials
	m := len(v.spec.Objectives)
	dirs := v.spec.Directions()

	// Training data: feasible results (the best and the newest when many).
	var train []*trial
	for _, t := range trials {
		if t.feasible && t.x != nil && len(t.y) == m {
			train = append(train, t)
		}
	}
	// The best feasible trials, by non-dominated rank then hypervolume
	// contribution: the heads of the neighbourhood search and half of a
	// large training set.
	tpts := make([][]float64, len(train))
	for i, t := range train {
		tpts[i] = t.y
	}
	nBest := min(len(train), max(neighbourHeads, gamma(len(train))))
	if len(train) > maxGPTrain {
		nBest = max(nBest, maxGPTrain/2)
	}
	rank := selectBest(tpts, nBest)
	bestTrials := make([]*trial, len(rank))
	for i, j := range rank {
		bestTrials[i] = train[j]
	}
	train = pickTraining(train, rank, maxGPTrain)
	// Trials stopped early (sampler.early_stop) teach the surrogate what
	// they measured: their partial objectives, dominated when they were
	// stopped. They are never heads of the search nor on the front below.
	for _, t := range trials {
		if t.status == statusPruned && t.x != nil && len(t.partial) == m && allFinite(t.partial) && len(train) < maxGPTrain {
			c := *t
			c.y = t.partial
			train = append(train, &c)
		}
	}
	var pending [][]int
	for _, t := range trials {
		if t.status == statusPending && t.x != nil {
			pending = append(pending, t.x)
		}
	}

	// Per objective: log transform when every value is positive.
	logT := make([]bool, m)
	for k := range m {
		logT[k] = true
		for _, t := range train {
			if study.MinFormValue(t.y[k], dirs[k]) <= 0 {
				logT[k] = false
			}
		}
	}
	fwd := func(v float64, k int) float64 {
		if logT[k] {
			return math.Log(v)
		}
		return v
	}
	back := func(u float64, k int) float64 {
		if logT[k] {
			return math.Exp(u)
		}
		return u
	}
	xs := make([][]int, len(train))
	for i, t := range train {
		xs[i] = v.codec.features(t.x)
	}
	for i, x := range pending {
		pending[i] = v.codec.features(x)
	}
	dist := v.codec.featureDist()
	models := make([]*gp, m)
	for k := range m {
		ys := make([]float64, len(train))
		for i, t := range train {
			ys[i] = fwd(study.MinFormValue(t.y[k], dirs[k]), k)
		}
		hx, hy := xs, ys
		if len(hx) > maxHyperTrain {
			hx, hy = hx[len(hx)-maxHyperTrain:], hy[len(hy)-maxHyperTrain:]
		}
		// Hyperparameters: two sweeps the first time, then one per proposal
		// while the training set is small, and once it is large whenever
		// it grew by an eighth since the last search.
		sweeps := 2
		if a.theta[k] != nil {
			sweeps = 1
			if len(train) > maxHyperTrain && len(train) < a.fitN+max(1, a.fitN/8) {
				sweeps = 0
			}
		}
		g := fitGP(hx, hy, dist, a.theta[k], a.noise[k], sweeps)
		a.theta[k], a.noise[k] = g.theta, g.noise
		if len(hx) != len(xs) {
			g = fitGP(xs, ys, dist, g.theta, g.noise, 0)
		}
		if len(pending) > 0 {
			// Kriging believer: pending trials observed at their predicted mean.
			px := append(append([][]int(nil), xs...), pending...)
			py := append([]float64(nil), ys...)
			for _, x := range pending {
				mu, _ := g.predict(x, nil, nil)
				py = append(py, mu)
			}
			g = fitGP(px, py, dist, g.theta, g.noise, 0)
		}
		models[k] = g
	}
	if a.fitN == 0 || len(train) >= a.fitN+max(1, a.fitN/8) {
		a.fitN = len(train)
	}

	// The front to improve, in minimisation form: feasible results plus the
	// believed values of the trials in flight.
	var pts [][]float64
	for _, t := range trials {
		if t.feasible && len(t.y) == m {
			pts = append(pts, t.y)
		}
	}
	for _, x := range pending {
		p := make([]float64, m)
		for k := range m {
			mu, _ := models[k].predict(x, nil, nil)
			p[k] = study.MinFormValue(back(mu, k), dirs[k])
		}
		pts = append(pts, p)
	}
	front := nonDominated(pts)
	ref := refPoint(v.all, dirs)
	if ref == nil {
		return v.startupDraw()
	}

	if nb := max(neighbourHeads, gamma(len(bestTrials))); len(bestTrials) > nb {
		bestTrials = bestTrials[:nb]
	}
	cands := candidates(v, bestTrials, len(train) >= maxGPTrain)
	if len(cands) == 0 {
		return nil
	}
	z := make([][]float64, ehviSamples)
	for i := range z {
		z[i] = make([]float64, m)
		for k := range z[i] {
			z[i][k] = v.rng.NormFloat64()
		}
	}
	kbuf := make([]float64, len(xs)+len(pending))
	vbuf := make([]float64, len(xs)+len(pending))
	mu := make([]float64, m)
	sd := make([]float64, m)
	p := make([]float64, m)
	sortFront(front)
	var best, opt []int
	bestScore, bestExplore, bestOpt := 0.0, -1.0, 0.0
	var explore []int
	for _, x := range cands {
		pf := v.feas.pFeasible(x, 1)
		if pf < 1e-3 {
			continue
		}
		unc := 0.0
		fx := v.codec.features(x)
		for k := range m {
			mu[k], sd[k] = models[k].predict(fx, kbuf, vbuf)
			unc += sd[k] / models[k].sc
		}
		ehvi := 0.0
		for _, zk := range z {
			for k := range m {
				p[k] = study.MinFormValue(back(mu[k]+sd[k]*zk[k], k), dirs[k])
			}
			ehvi += hvi(front, p, ref)
		}
		score := pf * ehvi / ehviSamples
		if score > bestScore {
			best, bestScore = x, score
		}
		for k := range m {
			p[k] = study.MinFormValue(back(mu[k]+optimism*sd[k]*optSign(dirs[k]), k), dirs[k])
		}
		if o := pf * hvi(front, p, ref); o > bestOpt {
			opt, bestOpt = x, o
		}
		if e := pf * unc; e > bestExplore {
			explore, bestExplore = x, e
		}
	}
	// When nothing is expected to improve the front by a meaningful amount,
	// the model is likely overconfident around what it has seen: take the
	// optimistic choice (the hypervolume improvement of the posterior mean
	// shifted optimism standard deviations towards better), then the most
	// uncertain one.
	if bestScore < stallFraction*study.HypervolumeMin(front, ref) {
		if opt != nil {
			return opt
		}
		return explore
	}
	return best
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

// candidates gathers configurations to score (none proposed before)
// around best, the best feasible trials in order. A large study (whose
// scoring costs more per candidate) gathers fewer.
func candidates(v *view, best []*trial, large bool) [][]int {
	nMut, nTPE, nUni := mutationCands, tpeCands, uniformCands
	if large {
		nMut, nTPE, nUni = nMut*2/3, nTPE*2/3, nUni*2/3
	}
	seen := map[string]bool{}
	var out [][]int
	add := func(x []int) {
		k := keyOf(x)
		if seen[k] {
			return
		}
		seen[k] = true
		if _, dup := v.seen[k]; dup {
			return
		}
		out = append(out, x)
	}
	order := make([]int, len(best))
	for i := range order {
		order[i] = i
	}
	feas := best
	heads := order[:min(len(order), neighbourHeads)]
	if len(heads) > 0 {
		// Every two-parameter change of the best trial: moves one
		// parameter at a time cannot make (tp 1, dp 8 -> tp 2, dp 4 keeps
		// the GPU count; each half alone is rejected).
		base := feas[heads[0]].x
		var pairs [][]int
		for j1 := range base {
			for j2 := j1 + 1; j2 < len(base); j2++ {
				for v1 := range v.codec.values[j1] {
					if v1 == base[j1] {
						continue
					}
					for v2 := range v.codec.values[j2] {
						if v2 == base[j2] {
							continue
						}
						x := append([]int(nil), base...)
						x[j1], x[j2] = v1, v2
						pairs = append(pairs, x)
					}
				}
			}
		}
		// Scoring costs grow with the training set: a large study scores
		// a random part of the neighbourhood.
		if large && len(pairs) > maxPairCands {
			v.rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
			pairs = pairs[:maxPairCands]
		}
		for _, x := range pairs {
			add(x)
		}
	}
	for _, i := range heads {
		base := feas[i].x
		for j, vals := range v.codec.values {
			for v := range vals {
				if v == base[j] {
					continue
				}
				x := append([]int(nil), base...)
				x[j] = v
				add(x)
			}
		}
	}
	if len(order) > 0 {
		for range nMut {
			base := feas[order[v.rng.IntN(len(order))]].x
			x := append([]int(nil), base...)
			for range 2 + v.rng.IntN(2) {
				j := v.rng.IntN(len(x))
				x[j] = v.rng.IntN(len(v.codec.values[j]))
			}
			add(x)
		}
		good := make([][]int, len(order))
		for i, idx := range order {
			good[i] = feas[idx].x
		}
		l := newParzen(v.codec, good)
		for range nTPE {
			add(l.sample(v.rng))
		}
	}
	for range nUni {
		add(v.codec.random(v.rng))
	}
	return out
}

// nonDominated returns the non-dominated points (minimisation form).
func nonDominated(pts [][]float64) [][]float64 {
	if len(pts) == 0 {
		return nil
	}
	var out [][]float64
	for _, i := range study.ParetoFront(pts, study.MinDirections(len(pts[0]))) {
		out = append(out, pts[i])
	}
	return out
}

// sortFront orders a non-dominated set by its first objective.
func sortFront(f [][]float64) {
	sort.Slice(f, func(i, j int) bool { return f[i][0] < f[j][0] })
}

// hvi is the hypervolume p adds to the non-dominated front (sorted by the
// first objective), all in minimisation form, against ref.
func hvi(front [][]float64, p, ref []float64) float64 {
	for k := range p {
		if !(p[k] < ref[k]) {
			return 0
		}
	}
	if len(p) != 2 {
		with := append(append([][]float64(nil), front...), p)
		d := study.MinDirections(len(p))
		return study.Hypervolume(with, d, ref) - study.Hypervolume(front, d, ref)
	}
	area := (ref[0] - p[0]) * (ref[1] - p[1])
	dom, prevY := 0.0, ref[1]
	for _, q := range front {
		c0, c1 := math.Max(q[0], p[0]), math.Max(q[1], p[1])
		if c0 >= ref[0] || c1 >= ref[1] {
			continue
		}
		if c1 < prevY {
			dom += (ref[0] - c0) * (prevY - c1)
			prevY = c1
		}
	}
	return math.Max(area-dom, 0)
}
