package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler"
)

// Member is a configuration on a front with its noise-free objective values.
type Member struct {
	Params events.Params `json:"params"`
	Values []float64     `json:"values"`
}

// SearchStats say how much work the reference search did.
type SearchStats struct {
	Proposed, Rejected, Failed, Feasible, Rounds int
}

// referenceFile caches a surface's best known front.
type referenceFile struct {
	// Fingerprint identifies the problem: the spec, the surface and what
	// it makes of a fixed set of probe configurations (a change of the
	// surface's code or the simulator's model shows there).
	Fingerprint    string      `json:"fingerprint"`
	Surface        string      `json:"surface"`
	Baseline       []float64   `json:"baseline"`
	ReferencePoint []float64   `json:"reference_point"`
	Rule           string      `json:"reference_rule"`
	SearchRandom   int         `json:"search_random"`
	Stats          SearchStats `json:"search_stats"`
	Hypervolume    float64     `json:"hypervolume"`
	Front          []Member    `json:"front"`
}

// problem is a surface ready to benchmark on: its judge, fixed reference
// point and best known front.
type problem struct {
	surf  Surface
	j     *judge
	spec  study.Spec
	dirs  []study.Direction
	ref   []float64
	best  []Member
	bestH float64
	file  string
	cache referenceFile
}

// loadProblem prepares a surface: the reference point from its noise-free
// baseline, and its best known front from the cache in dir, searched again
// when missing or stale.
func loadProblem(s Surface, dir string, searchRandom int, pairs bool, workers int, log func(string, ...any)) (*problem, error) {
	j := newJudge(s)
	spec := s.Spec()
	base, err := sampler.Baseline(spec.Space)
	if err != nil {
		return nil, err
	}
	bv := j.values(j.judge(base, true))
	if bv == nil {
		return nil, fmt.Errorf("%s: the baseline does not complete", s.Name())
	}
	pr := &problem{surf: s, j: j, spec: spec, dirs: spec.Directions()}
	pr.ref = study.ReferencePoint(bv, pr.dirs)
	fp := fingerprint(s, j)
	pr.file = filepath.Join(dir, "reference-"+s.Name()+".json")
	if rf, err := readReference(pr.file); err == nil && rf.Fingerprint == fp {
		pr.cache, pr.best = rf, rf.Front
	} else {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			log("%s: reference cache not used: %v", s.Name(), err)
		}
		best, stats := searchFront(pr, searchRandom, pairs, workers)
		log("%s: reference search: %d configurations (%d rejected, %d failed, %d feasible), %d rounds, %d on the front",
			s.Name(), stats.Proposed, stats.Rejected, stats.Failed, stats.Feasible, stats.Rounds, len(best))
		pr.best = best
		pr.cache = referenceFile{Fingerprint: fp, Surface: s.Name(), Baseline: bv, ReferencePoint: pr.ref,
			Rule: study.ReferenceRule, SearchRandom: searchRandom, Stats: stats}
		if err := pr.save(); err != nil {
			return nil, err
		}
	}
	pr.bestH = pr.hv(pr.best)
	return pr, nil
}

func (pr *problem) hv(ms []Member) float64 {
	pts := make([][]float64, len(ms))
	for i, m := range ms {
		pts[i] = m.Values
	}
	return study.Hypervolume(pts, pr.dirs, pr.ref)
}

// widen adds members the studies found to the best known front, and
// saves it when it grew.
func (pr *problem) widen(found []Member) error {
	union := front(append(append([]Member(nil), pr.best...), found...), pr.dirs)
	h := pr.hv(union)
	if h <= pr.bestH*(1+1e-12) {
		return nil
	}
	pr.best, pr.bestH = union, h
	return pr.save()
}

func (pr *problem) save() error {
	pr.cache.Front = pr.best
	pr.cache.Hypervolume = pr.hv(pr.best)
	b, err := json.MarshalIndent(pr.cache, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(pr.file, append(b, '\n'), 0o644)
}

func readReference(path string) (referenceFile, error) {
	var rf referenceFile
	b, err := os.ReadFile(path)
	if err != nil {
		return rf, err
	}
	if err := json.Unmarshal(b, &rf); err != nil {
		return rf, fmt.Errorf("%s: %w", path, err)
	}
	return rf, nil
}

// fingerprint hashes the spec, the surface's name and its verdicts on 300
// fixed random configurations.
func fingerprint(s Surface, j *judge) string {
	h := sha256.New()
	spec := s.Spec()
	b, _ := json.Marshal(struct {
		Name  string
		Space study.Space
		Rules study.Rules
		Obj   []study.Objective
		Work  events.Workload
		Model string
	}{s.Name(), spec.Space, spec.Rules, spec.Objectives, spec.Workload, spec.Model.Path})
	h.Write(b)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 300 {
		v := j.judge(randomParams(spec.Space, rng), false)
		fmt.Fprintf(h, "%v|%v|%s|%s|", v.rejected, v.m.Failed, v.m.Class, v.m.Stderr)
		for _, k := range []string{"mean_ttft_ms", "output_throughput"} {
			fmt.Fprintf(h, "%.9g|", v.m.Metrics[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func randomParams(sp study.Space, rng *rand.Rand) events.Params {
	p := make(events.Params, len(sp))
	for _, ps := range sp {
		p[ps.Name] = ps.Values[rng.IntN(len(ps.Values))]
	}
	return p
}

// searchFront looks for the best front: a uniformly random sample of the
// space, then every single- and two-parameter change of every front
// member, repeated until the front no longer changes.
func searchFront(pr *problem, random int, pairs bool, workers int) ([]Member, SearchStats) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &searcher{pr: pr, seen: map[string]bool{}, workers: workers}
	rng := rand.New(rand.NewPCG(1, 0x726566))
	batch := make([]events.Params, 0, random)
	for range random {
		batch = append(batch, randomParams(pr.spec.Space, rng))
	}
	s.evalAll(batch)
	done1, done2 := map[string]bool{}, map[string]bool{}
	for {
		s.stats.Rounds++
		grew := false
		for _, m := range front(s.archive, pr.dirs) {
			if k := study.ParamsKey(m.Params); !done1[k] {
				done1[k], grew = true, true
				s.evalAll(neighbours(pr.spec.Space, m.Params, false))
			}
		}
		if grew {
			continue
		}
		if !pairs {
			break
		}
		for _, m := range front(s.archive, pr.dirs) {
			if k := study.ParamsKey(m.Params); !done2[k] {
				done2[k], grew = true, true
				s.evalAll(neighbours(pr.spec.Space, m.Params, true))
			}
		}
		if !grew {
			break
		}
	}
	return front(s.archive, pr.dirs), s.stats
}

type searcher struct {
	pr      *problem
	workers int
	mu      sync.Mutex
	seen    map[string]bool
	archive []Member
	stats   SearchStats
}

func (s *searcher) evalAll(ps []events.Params) {
	var todo []events.Params
	for _, p := range ps {
		if k := study.ParamsKey(p); !s.seen[k] {
			s.seen[k] = true
			todo = append(todo, p)
		}
	}
	ch := make(chan events.Params)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for p := range ch {
				v := s.pr.j.judgeFresh(p)
				vals := s.pr.j.values(v)
				s.mu.Lock()
				s.stats.Proposed++
				switch {
				case v.rejected:
					s.stats.Rejected++
				case v.m.Failed:
					s.stats.Failed++
				case vals != nil:
					s.stats.Feasible++
					s.archive = append(s.archive, Member{Params: p, Values: vals})
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
	s.archive = front(s.archive, s.pr.dirs)
}

// neighbours are every single-parameter change of base (pairs: every
// two-parameter change).
func neighbours(sp study.Space, base events.Params, pairs bool) []events.Params {
	var out []events.Params
	for i := range sp {
		for _, vi := range sp[i].Values {
			if study.ValueEqual(vi, base[sp[i].Name]) {
				continue
			}
			if !pairs {
				p := clone(base)
				p[sp[i].Name] = vi
				out = append(out, p)
				continue
			}
			for j := i + 1; j < len(sp); j++ {
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

// front returns the non-dominated members, one per objective vector.
func front(ms []Member, dirs []study.Direction) []Member {
	pts := make([][]float64, len(ms))
	for i, m := range ms {
		pts[i] = m.Values
	}
	var out []Member
	seen := map[string]bool{}
	for _, i := range study.ParetoFront(pts, dirs) {
		k := fmt.Sprint(ms[i].Values)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, ms[i])
	}
	return out
}
