package benchmark

import (
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// SearchOptions bound the long search for the best known front.
type SearchOptions struct {
	// Random is the number of uniformly random configurations drawn first
	// (rejected ones included).
	Random int
	// Seed seeds the random draws.
	Seed int64
	// Pairs adds, once the single-parameter neighbourhoods stop improving
	// the front, every two-parameter change of each front member, and
	// repeats both neighbourhoods until the front no longer changes.
	Pairs bool
	// Workers evaluate in parallel; 0: GOMAXPROCS.
	Workers int
	// Start are configurations evaluated first (e.g. every configuration a
	// benchmarked study completed), so the search starts from their front.
	Start []events.Params
}

// Member is a configuration on a front with its objective values.
type Member struct {
	Params events.Params `json:"params"`
	Values []float64     `json:"values"`
}

// SearchStats say how much work the search did.
type SearchStats struct {
	// Proposed configurations, rejected by the rules, failed, completed feasible.
	Proposed, Rejected, Failed, Feasible int
	// Rounds of neighbourhood expansion.
	Rounds int
}

// SearchFront looks for the best front of spec's problem: a uniformly random
// sample of the space, then an exhaustive neighbourhood search around the
// front (every single-parameter change of every front member, repeated
// until no member is added; with Pairs, also every two-parameter change).
// It returns the non-dominated feasible configurations found.
func SearchFront(spec study.Spec, eval Evaluator, opts SearchOptions) ([]Member, SearchStats) {
	s := &searcher{spec: spec, eval: eval, seen: map[string]bool{}, workers: opts.Workers}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	s.evalAll(opts.Start)
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x7265_66))
	batch := make([]events.Params, 0, opts.Random)
	for range opts.Random {
		batch = append(batch, s.random(rng))
	}
	s.evalAll(batch)
	expanded1 := map[string]bool{}
	expanded2 := map[string]bool{}
	for {
		s.stats.Rounds++
		grew := false
		for _, m := range s.front() {
			k := ParamsKey(m.Params)
			if expanded1[k] {
				continue
			}
			expanded1[k] = true
			grew = true
			s.evalAll(s.neighbours1(m.Params))
		}
		if grew {
			continue
		}
		if !opts.Pairs {
			break
		}
		for _, m := range s.front() {
			k := ParamsKey(m.Params)
			if expanded2[k] {
				continue
			}
			expanded2[k] = true
			grew = true
			s.evalAll(s.neighbours2(m.Params))
		}
		if !grew {
			break
		}
	}
	return s.front(), s.stats
}

type searcher struct {
	spec    study.Spec
	eval    Evaluator
	workers int
	mu      sync.Mutex
	seen    map[string]bool
	archive []Member
	stats   SearchStats
}

func (s *searcher) random(rng *rand.Rand) events.Params {
	p := make(events.Params, len(s.spec.Space))
	for _, ps := range s.spec.Space {
		p[ps.Name] = ps.Values[rng.IntN(len(ps.Values))]
	}
	return p
}

func (s *searcher) neighbours1(base events.Params) []events.Params {
	var out []events.Params
	for _, ps := range s.spec.Space {
		for _, v := range ps.Values {
			if study.ValueEqual(v, base[ps.Name]) {
				continue
			}
			p := clone(base)
			p[ps.Name] = v
			out = append(out, p)
		}
	}
	return out
}

func (s *searcher) neighbours2(base events.Params) []events.Params {
	var out []events.Params
	sp := s.spec.Space
	for i := range sp {
		for j := i + 1; j < len(sp); j++ {
			for _, vi := range sp[i].Values {
				if study.ValueEqual(vi, base[sp[i].Name]) {
					continue
				}
				for _, vj := range sp[j].Values {
					if study.ValueEqual(vj, base[sp[j].Name]) {
						continue
					}
					p := clone(base)
					p[sp[i].Name], p[sp[j].Name] = vi, vj
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func clone(p events.Params) events.Params {
	out := make(events.Params, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// evalAll evaluates the configurations not seen before, in parallel.
func (s *searcher) evalAll(ps []events.Params) {
	var todo []events.Params
	s.mu.Lock()
	for _, p := range ps {
		k := ParamsKey(p)
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		todo = append(todo, p)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	ch := make(chan events.Params)
	for range s.workers {
		wg.Go(func() {
			for p := range ch {
				v := s.eval.Evaluate(p)
				s.mu.Lock()
				s.stats.Proposed++
				switch {
				case v.Kind == kindRejected:
					s.stats.Rejected++
				case v.Kind == kindFailed:
					s.stats.Failed++
				default:
					if vals, ok := s.spec.ObjectiveValues(v.Metrics); ok && len(s.spec.Violations(v.Metrics)) == 0 {
						s.stats.Feasible++
						s.archive = append(s.archive, Member{Params: p, Values: vals})
					}
				}
				s.mu.Unlock()
			}
		})
	}
	for _, p := range todo {
		ch <- p
	}
	close(ch)
	wg.Wait()
	s.archive = s.front() // keep only what may matter
}

// front is the non-dominated subset of the archive (one member per
// objective vector).
func (s *searcher) front() []Member {
	return Front(s.archive, s.spec.Directions())
}

// Front returns the non-dominated members of ms, one per distinct objective
// vector, in input order.
func Front(ms []Member, dirs []study.Direction) []Member {
	pts := make([][]float64, len(ms))
	for i, m := range ms {
		pts[i] = m.Values
	}
	var out []Member
	seen := map[[2]float64]bool{}
	for _, i := range study.ParetoFront(pts, dirs) {
		var key [2]float64
		copy(key[:], ms[i].Values)
		if len(ms[i].Values) <= 2 && seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, ms[i])
	}
	return out
}
