package sampling

import (
	"math"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
)

// candidates gathers configurations to score (none proposed before)
// around best, the best feasible trials in order. A large study (whose
// scoring costs more per candidate) gathers fewer.
func candidates(v *view, best []*trial, large bool) [][]int {
	nMut, nTPE, nUni := mutationCands, tpeCands, uniformCands
	if large {
		nMut, nTPE, nUni = nMut/2, nTPE/2, nUni/2
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
	if large {
		heads = heads[:min(len(heads), neighbourHeads/2)]
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
