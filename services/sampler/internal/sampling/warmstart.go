package sampling

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sgtune/sgtune/pkg/study"
)

// Warm start (spec sampler.warm_start): a new study seeded with what
// finished studies learned, as a prior its own results override.
//
//   - Feasibility: every failure cause, rule and SLO the finished studies
//     met enters the feasibility model as prior observations, so known
//     failures are screened from the first proposal. An own observation
//     the prior got wrong (a configuration the prior was sure fails
//     launches, or one it was sure launches fails) drops that constraint's
//     prior observations: another GPU model or SGLang version may fail
//     differently.
//   - Good regions: the best configurations of the finished studies (their
//     fronts, best first by non-dominated rank and hypervolume contribution
//     under this study's objectives) are proposed first, after the
//     baseline, in place of the random startup trials; from then on the
//     algorithm learns from this study's own results.
//
// A warm start reads the finished studies' records and never changes them.

// PriorStudy is a finished study's record for a warm start.
type PriorStudy struct {
	// Name of the study (for errors).
	Name string
	// Space is its search space; it must be this study's (the same
	// parameters with the same values, in any order).
	Space study.Space
	// Outcomes of its trials, each with its Params.
	Outcomes []Outcome
}

// ErrWarmStart is wrapped by NewPrior's errors.
var ErrWarmStart = errors.New("warm start")

// Prior is what finished studies learned. Build it with NewPrior.
type Prior struct {
	studies []string
	trials  []*trial // decoded in the new study's space and objectives
	queue   [][]int  // best configurations, best first
	nFeas   int
}

// maxWarmQueue bounds the configurations a warm start proposes first.
const maxWarmQueue = 10

// NewPrior reads finished studies for a study with spec. A study whose
// space differs is an error naming it and the difference.
func NewPrior(spec study.Spec, studies []PriorStudy) (*Prior, error) {
	cd, err := newCodec(spec.Space)
	if err != nil {
		return nil, err
	}
	p := &Prior{}
	dirs := spec.Directions()
	for _, ps := range studies {
		if err := sameSpace(spec.Space, ps.Space); err != nil {
			return nil, fmt.Errorf("%w: study %q has a different parameter space: %w", ErrWarmStart, ps.Name, err)
		}
		p.studies = append(p.studies, ps.Name)
		for _, o := range ps.Outcomes {
			x, ok := cd.encode(o.Params)
			if !ok {
				continue
			}
			t := &trial{number: -1, gid: -1, x: x, key: keyOf(x), benchSeq: -1, rules: o.Rules,
				failClass: o.FailureClass, failCause: o.FailureCause}
			switch o.Kind {
			case Completed, Pruned:
				t.status = statusCompleted
				if o.Kind == Pruned {
					t.status = statusPruned
				}
				if vals, ok := spec.ObjectiveValues(o.Metrics); ok {
					t.ownY = study.MinForm(vals, dirs)
				}
				t.ownFeasible = o.Kind == Completed && t.ownY != nil && allFinite(t.ownY) && len(spec.Violations(o.Metrics)) == 0
				t.y, t.feasible = t.ownY, t.ownFeasible
			case Failed:
				t.status = statusFailed
			case Rejected:
				t.status = statusRejected
			default:
				continue // a duplicate says nothing about its config
			}
			p.trials = append(p.trials, t)
		}
	}
	var feas []*trial
	var pts [][]float64
	seen := map[string]bool{}
	for _, t := range p.trials {
		if t.feasible && !seen[t.key] {
			seen[t.key] = true
			feas = append(feas, t)
			pts = append(pts, t.y)
		}
	}
	p.nFeas = len(feas)
	for _, i := range selectBest(pts, min(maxWarmQueue, len(pts))) {
		p.queue = append(p.queue, feas[i].x)
	}
	return p, nil
}

// Studies names the finished studies the prior comes from.
func (p *Prior) Studies() []string { return p.studies }

// Trials is how many of their trials the prior holds.
func (p *Prior) Trials() int { return len(p.trials) }

// startupCredit is how many startup trials the prior stands in for.
func (p *Prior) startupCredit() int {
	if p.nFeas >= 2 {
		return 1 << 20
	}
	return 0
}

func (p *Prior) feasibleCount() int { return min(p.nFeas, 2) }

// applyPrior feeds the prior's observations to the feasibility model.
func (s *Study) applyPrior(p *Prior) error {
	s.feas.addPrior(p.trials)
	return nil
}

// nextWarm returns the next prior configuration to propose, or nil.
func (s *Study) nextWarm() []int {
	if s.prior == nil {
		return nil
	}
	for len(s.prior.queue) > 0 {
		x := s.prior.queue[0]
		s.prior.queue = s.prior.queue[1:]
		if _, dup := s.h.seen[keyOf(x)]; !dup {
			return x
		}
	}
	return nil
}

// sameSpace reports how two spaces differ (nil when they have the same
// parameters with the same values, in any order).
func sameSpace(a, b study.Space) error {
	set := func(sp study.Space) map[string]map[string]bool {
		out := map[string]map[string]bool{}
		for _, p := range sp {
			vals := map[string]bool{}
			def, _ := study.LookupParam(p.Name)
			for _, v := range p.Values {
				if nv, err := study.NormalizeValue(def, v); err == nil {
					v = nv
				}
				vals[study.FormatValue(v)] = true
			}
			out[p.Name] = vals
		}
		return out
	}
	sa, sb := set(a), set(b)
	var diffs []string
	for name, va := range sa {
		vb, ok := sb[name]
		if !ok {
			diffs = append(diffs, "it has no "+name)
			continue
		}
		if !sameKeys(va, vb) {
			diffs = append(diffs, name+" has other values ("+strings.Join(keys(vb), ", ")+" instead of "+strings.Join(keys(va), ", ")+")")
		}
	}
	for name := range sb {
		if _, ok := sa[name]; !ok {
			diffs = append(diffs, "it also searches "+name)
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return errors.New(strings.Join(diffs, "; "))
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
