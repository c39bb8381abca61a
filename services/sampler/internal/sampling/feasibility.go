package sampling

import (
	"math"
	"sort"
	"strings"
)

// Feasibility model: what the study learned from rejections, failures and
// SLO misses, as one probability per constraint that a configuration
// violates it.
//
// Each constraint is a key: "rule:<id>" for a validation rule (labelled on
// every trial the validator judged: violated when the rejection names it),
// "fail:<class>:<cause>" for a failure class and cause (labelled on every
// trial that completed, as passing, and every trial that failed the same
// way, as violating) and "slo" (labelled on every
// completed trial: violated when it missed an SLO or an objective).
//
// A validation rule (and most launch failures) is a deterministic function
// of a few parameters: the seed's gpu rule reads tp, dp and pp; its graph
// rules read two. So each constraint's model is a signature: the smallest
// sets of at most maxSigParams parameters whose values separate the
// violating configurations from the passing ones (no value combination
// seen on both sides). A configuration whose combination was seen violating
// violates; one seen passing passes; an unseen combination gets the
// constraint's base rate. With few observations several sets separate
// them: the prediction averages over them (at most maxSignatures),
// weighting the sparest explanations (fewest violating combinations) most. New
// observations only remove sets; when none is left the search resumes one
// size up. When no set of maxSigParams parameters separates the data (a
// noisy SLO), a per-parameter frequency model stands in.
//
// On top of the signatures, a failure cause learns value rules: a cause
// seen on two or more configurations that share a parameter value, a value
// no configuration has passed with (completed, or pruned after launching),
// is predicted for every configuration with that value (probability
// valueRuleProb) until a counter-example arrives. A failure with another
// cause is no counter-example: the server stops at its first problem.

const (
	maxSigParams  = 3
	maxSignatures = 48
	maxSigObs     = 600 // observations a full search looks at (the latest)
	maxSigTuples  = 1 << 16
)

type sigObs struct {
	x    []int
	viol bool
}

type signature struct {
	params []int
	seen   []uint8 // by tuple: 1 violating, 2 passing, 0 unseen
	nViol  int     // distinct violating tuples seen
}

type constraintModel struct {
	k      []int      // values per parameter
	rules  bool       // learn value rules (failure causes)
	cond   []condRule // conditional value rules; nil: not derived since the last observation
	obs    []sigObs
	nPrior int // the first nPrior observations are a warm start's
	// valViol and valPass count, per parameter and value, the violating
	// and passing observations (value rules).
	valViol, valPass [][]int
	nViol            int
	size             int // size of the signatures; -1 before the first search
	sigs             []*signature
	fallback         bool
	freq             [][][2]float64 // fallback: per parameter and value, [violations, observations]
}

func newConstraintModel(k []int) *constraintModel {
	m := &constraintModel{k: k, size: -1, valViol: make([][]int, len(k)), valPass: make([][]int, len(k))}
	for j, n := range k {
		m.valViol[j], m.valPass[j] = make([]int, n), make([]int, n)
	}
	return m
}

// tuple is the index of x's values of params in a signature's table.
func (m *constraintModel) tuple(params []int, x []int) int {
	t := 0
	for _, p := range params {
		t = t*m.k[p] + x[p]
	}
	return t
}

func (m *constraintModel) newSignature(ps []int) *signature {
	n := 1
	for _, p := range ps {
		n *= m.k[p]
	}
	return &signature{params: append([]int(nil), ps...), seen: make([]uint8, n)}
}

// add records one labelled observation.
func (m *constraintModel) add(x []int, viol bool) {
	m.obs = append(m.obs, sigObs{x: x, viol: viol})
	m.cond = nil
	for j, v := range x {
		if viol {
			m.valViol[j][v]++
		} else {
			m.valPass[j][v]++
		}
	}
	if viol {
		m.nViol++
	}
	if m.size < 0 || m.fallback {
		m.size = -1
		return
	}
	var kept []*signature
	for _, s := range m.sigs {
		t := m.tuple(s.params, x)
		bit := uint8(2)
		if viol {
			bit = 1
		}
		if s.seen[t]|bit == 3 {
			continue
		}
		if viol && s.seen[t] == 0 {
			s.nViol++
		}
		s.seen[t] |= bit
		kept = append(kept, s)
	}
	m.sigs = kept
	if len(kept) == 0 {
		m.size = -1 // search again, from the next size up
	}
}

// observe records one of the study's own observations. When it
// contradicts what a warm start's prior observations predict (sure to
// violate but passed, or sure to pass but violated), the prior ones are
// dropped: the study's own results override the prior.
func (m *constraintModel) observe(x []int, viol bool) {
	if m.nPrior > 0 {
		p := m.prob(x)
		if (viol && p < 0.1) || (!viol && p > 0.9) {
			m.dropPrior()
		}
	}
	m.add(x, viol)
}

// dropPrior forgets the warm start's observations.
func (m *constraintModel) dropPrior() {
	own := append([]sigObs(nil), m.obs[m.nPrior:]...)
	fresh := newConstraintModel(m.k)
	fresh.rules = m.rules
	*m = *fresh
	for _, o := range own {
		m.add(o.x, o.viol)
	}
}

// fit searches the smallest separating parameter sets when needed.
func (m *constraintModel) fit(from int) {
	if m.size >= 0 {
		return
	}
	obs := m.obs
	if len(obs) > maxSigObs {
		obs = obs[len(obs)-maxSigObs:]
	}
	d := len(m.k)
	m.sigs, m.fallback = nil, false
	for size := max(from, 1); size <= min(maxSigParams, d); size++ {
		forSubsets(d, size, func(ps []int) bool {
			n := 1
			for _, p := range ps {
				n *= m.k[p]
			}
			if n > maxSigTuples {
				return true
			}
			s := m.newSignature(ps)
			for _, o := range obs {
				t := m.tuple(ps, o.x)
				bit := uint8(2)
				if o.viol {
					bit = 1
				}
				if s.seen[t]|bit == 3 {
					return true
				}
				if o.viol && s.seen[t] == 0 {
					s.nViol++
				}
				s.seen[t] |= bit
			}
			m.sigs = append(m.sigs, s)
			return len(m.sigs) < maxSignatures
		})
		if len(m.sigs) > 0 {
			m.size = size
			return
		}
	}
	// Nothing separates: per-parameter frequencies.
	m.fallback, m.size = true, 0
	m.freq = make([][][2]float64, d)
	for j := range d {
		m.freq[j] = make([][2]float64, m.k[j])
	}
	for _, o := range obs {
		for j, v := range o.x {
			if o.viol {
				m.freq[j][v][0]++
			}
			m.freq[j][v][1]++
		}
	}
}

// prob is the probability that x violates the constraint.
func (m *constraintModel) prob(x []int) float64 {
	if m.nViol == 0 {
		return 0
	}
	p := m.sigProb(x)
	if p < valueRuleProb && m.ruled(x) {
		return valueRuleProb
	}
	return p
}

// sigProb is the signatures' (or the fallback's) probability that x violates.
func (m *constraintModel) sigProb(x []int) float64 {
	n := len(m.obs)
	base := (float64(m.nViol) + 1) / (float64(n) + 2)
	if m.nViol == n {
		return base
	}
	if m.size < 0 {
		m.fit(1)
	}
	if m.fallback {
		// Naive odds: the base rate times each value's likelihood ratio.
		lo := math.Log(base / (1 - base))
		for j, v := range x {
			f := m.freq[j][v]
			r := (f[0] + base) / (f[1] + 1)
			lo += math.Log(r/(1-min(r, 0.999))) - math.Log(base/(1-base))
		}
		return 1 / (1 + math.Exp(-lo))
	}
	// Occam weighting: an explanation that needs more violating value
	// combinations for the same violations is less likely (three TBO
	// crashes are one combination of enable_two_batch_overlap, but three
	// of page_size or of tokenizer_worker_num).
	minV := math.MaxInt
	for _, s := range m.sigs {
		minV = min(minV, s.nViol)
	}
	sum, wsum := 0.0, 0.0
	for _, s := range m.sigs {
		w := math.Exp(-occamPenalty * float64(s.nViol-minV))
		wsum += w
		switch s.seen[m.tuple(s.params, x)] {
		case 1:
			sum += w
		case 2:
		default:
			sum += w * base
		}
	}
	return sum / wsum
}

// occamPenalty is the log-weight a signature loses per violating value
// combination more than the sparest signature needs.
const occamPenalty = 2.0

// forSubsets calls f with every size-k subset of 0..d-1 (ascending) until f
// returns false.
func forSubsets(d, k int, f func([]int) bool) {
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for {
		if !f(idx) {
			return
		}
		i := k - 1
		for i >= 0 && idx[i] == d-k+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// feasibility holds the constraint models of a study and feeds them the
// trials' outcomes incrementally.
type feasibility struct {
	k      []int
	models map[string]*constraintModel
	keys   []string
	fed    map[*trial]bool
}

func newFeasibility(c *codec) *feasibility {
	k := make([]int, len(c.values))
	for j, v := range c.values {
		k[j] = len(v)
	}
	return &feasibility{k: k, models: map[string]*constraintModel{}, fed: map[*trial]bool{}}
}

// update feeds the finished trials not fed yet. A new constraint key is
// back-filled with every earlier trial that carries its label.
func (f *feasibility) update(trials []*trial) {
	for _, t := range trials {
		if t.x == nil || t.status == statusPending || t.status == statusDuplicate || f.fed[t] {
			continue
		}
		f.fed[t] = true
		for _, key := range constraintKeys(t) {
			if _, ok := f.models[key]; !ok {
				m := newConstraintModel(f.k)
				m.rules = strings.HasPrefix(key, "fail:")
				for _, u := range trials {
					if u != t && f.fed[u] {
						if viol, labelled := label(u, key); labelled {
							m.observe(u.x, viol)
						}
					}
				}
				f.models[key] = m
				f.keys = append(f.keys, key)
				sort.Strings(f.keys)
			}
		}
		for _, key := range f.keys {
			if viol, labelled := label(t, key); labelled {
				f.models[key].observe(t.x, viol)
			}
		}
	}
}

// addPrior feeds a warm start's trials to the model, before any of the
// study's own, as prior observations (constraintModel.observe).
func (f *feasibility) addPrior(trials []*trial) {
	keys := map[string]bool{}
	for _, t := range trials {
		for _, k := range constraintKeys(t) {
			keys[k] = true
		}
	}
	for key := range keys {
		m, ok := f.models[key]
		if !ok {
			m = newConstraintModel(f.k)
			m.rules = strings.HasPrefix(key, "fail:")
			f.models[key] = m
			f.keys = append(f.keys, key)
		}
		for _, t := range trials {
			if viol, labelled := label(t, key); labelled {
				m.add(t.x, viol)
			}
		}
		m.nPrior = len(m.obs)
	}
	sort.Strings(f.keys)
}

// constraintKeys are the constraints t violated.
func constraintKeys(t *trial) []string {
	switch t.status {
	case statusRejected:
		keys := make([]string, 0, len(t.rules))
		for _, r := range t.rules {
			keys = append(keys, "rule:"+r)
		}
		if len(keys) == 0 {
			keys = append(keys, "rule:unknown")
		}
		return keys
	case statusFailed:
		return []string{failureKey(t)}
	case statusCompleted:
		if !t.feasible {
			return []string{"slo"}
		}
	}
	return nil
}

// label says whether t violated constraint key, and whether t tells at all.
func label(t *trial, key string) (viol, labelled bool) {
	switch {
	case len(key) > 5 && key[:5] == "rule:":
		if t.status == statusPending || t.status == statusDuplicate {
			return false, false
		}
		if t.status != statusRejected {
			return false, true
		}
		for _, k := range constraintKeys(t) {
			if k == key {
				return true, true
			}
		}
		return false, true
	case len(key) > 5 && key[:5] == "fail:":
		switch t.status {
		case statusFailed:
			// A failure with another cause says nothing about this one
			// (the server stops at its first problem).
			if constraintKeys(t)[0] == key {
				return true, true
			}
			return false, false
		case statusCompleted, statusPruned:
			// It launched and ran.
			return false, true
		}
		return false, false
	case key == "slo":
		if t.status == statusCompleted {
			return !t.feasible, true
		}
	}
	return false, false
}

// failureKey is the constraint of a failed trial: its class and cause.
func failureKey(t *trial) string {
	c := t.failClass
	if c == "" {
		c = "unknown"
	}
	if t.failCause != "" {
		c += ":" + t.failCause
	}
	return "fail:" + c
}

// knownFailure reports whether x is all but certain to fail for a cause
// seen at least twice: the study's screen against wasting a launch on a
// known failure.
func (f *feasibility) knownFailure(x []int) bool {
	for _, key := range f.keys {
		m := f.models[key]
		if strings.HasPrefix(key, "fail:") && m.nViol >= 2 && m.prob(x) >= knownFailureProb {
			return true
		}
	}
	return false
}

// knownFailureProb is the violation probability from which the screen
// treats a failure as known.
const knownFailureProb = 0.9

// pFeasible is the probability that x violates no constraint, counting the
// validation rules (whose rejections cost no budget) with weight ruleWeight.
func (f *feasibility) pFeasible(x []int, ruleWeight float64) float64 {
	p := 1.0
	for _, key := range f.keys {
		q := 1 - f.models[key].prob(x)
		if strings.HasPrefix(key, "rule:") { // keys are "rule:<id>", "fail:<cause>" or "slo"
			q = math.Pow(q, ruleWeight)
		}
		p *= q
	}
	return p
}
