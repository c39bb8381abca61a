package sampling

import (
	"math"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
)

// Every point handled here is in minimisation form.

// normalizer maps minimisation-form points to [0, 1] per objective using the
// bounds of a reference set; the hypervolume reference point is 1.1 in every
// objective, just beyond the worst point of the set.
type normalizer struct{ lo, hi []float64 }

func newNormalizer(pts [][]float64) normalizer {
	m := len(pts[0])
	n := normalizer{lo: make([]float64, m), hi: make([]float64, m)}
	for k := range m {
		n.lo[k], n.hi[k] = math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			n.lo[k] = math.Min(n.lo[k], p[k])
			n.hi[k] = math.Max(n.hi[k], p[k])
		}
	}
	return n
}

func (n normalizer) apply(p []float64) []float64 {
	out := make([]float64, len(p))
	for k, v := range p {
		if span := n.hi[k] - n.lo[k]; span > 0 {
			out[k] = (v - n.lo[k]) / span
		}
	}
	return out
}

func (n normalizer) ref() []float64 {
	r := make([]float64, len(n.lo))
	for k := range r {
		r[k] = 1.1
	}
	return r
}

// selectBest returns the indices of the k best points: whole fronts of the
// non-dominated sort in order, and from the front that does not fit whole,
// the points chosen greedily by hypervolume contribution (Optuna's MOTPE
// uses the same hypervolume subset selection). Ties keep input order.
func selectBest(pts [][]float64, k int) []int {
	if k <= 0 || len(pts) == 0 {
		return nil
	}
	if k >= len(pts) {
		out := make([]int, len(pts))
		for i := range out {
			out[i] = i
		}
		return out
	}
	fronts := study.NonDominatedSort(pts, study.MinDirections(len(pts[0])))
	var out []int
	for _, f := range fronts {
		if len(out)+len(f) <= k {
			out = append(out, f...)
			if len(out) == k {
				break
			}
			continue
		}
		out = append(out, hvSubset(pts, f, k-len(out))...)
		break
	}
	return out
}

// hvSubset greedily picks k indices of front (a non-dominated set) that add
// the most hypervolume, in the normalised space of the front.
func hvSubset(pts [][]float64, front []int, k int) []int {
	fp := make([][]float64, len(front))
	for i, idx := range front {
		fp[i] = pts[idx]
	}
	norm := newNormalizer(fp)
	ref := norm.ref()
	for i := range fp {
		fp[i] = norm.apply(fp[i])
	}
	chosen := make([]bool, len(front))
	var sel [][]float64
	var out []int
	base := 0.0
	for range k {
		best, bestGain := -1, math.Inf(-1)
		for i := range fp {
			if chosen[i] {
				continue
			}
			gain := study.HypervolumeMin(append(sel[:len(sel):len(sel)], fp[i]), ref) - base
			if gain > bestGain {
				best, bestGain = i, gain
			}
		}
		chosen[best] = true
		sel = append(sel, fp[best])
		base += bestGain
		out = append(out, front[best])
	}
	return out
}

// plateau reports whether the hypervolume of the feasible front grew by no
// more than spec.Sampler.PlateauMinImprovement (a fraction of the earlier
// hypervolume) over the last PlateauWindow benchmarked trials. Both
// hypervolumes are measured in the same normalised space: the bounds of all
// feasible results so far, reference point 1.1.
func (s *Study) plateau() bool {
	w := s.spec.Sampler.PlateauWindow
	if w <= 0 || len(s.h.bench) <= w {
		return false
	}
	cut := len(s.h.bench) - w
	var all, before [][]float64
	for _, t := range s.h.bench {
		if !t.feasible {
			continue
		}
		all = append(all, t.y)
		if t.benchSeq < cut {
			before = append(before, t.y)
		}
	}
	if len(before) == 0 {
		return false
	}
	norm := newNormalizer(all)
	ref := norm.ref()
	hvAll := study.HypervolumeMin(normFront(all, norm), ref)
	hvBefore := study.HypervolumeMin(normFront(before, norm), ref)
	if hvBefore <= 0 {
		return false
	}
	return (hvAll-hvBefore)/hvBefore <= s.spec.Sampler.PlateauMinImprovement
}

// normFront normalises the non-dominated points of pts.
func normFront(pts [][]float64, norm normalizer) [][]float64 {
	idx := study.ParetoFront(pts, study.MinDirections(len(pts[0])))
	out := make([][]float64, len(idx))
	for i, j := range idx {
		out[i] = norm.apply(pts[j])
	}
	return out
}

// rankAndCrowd assigns NSGA-II's rank (front index) and crowding distance
// to every point.
func rankAndCrowd(pts [][]float64) (rank []int, crowd []float64, fronts [][]int) {
	rank = make([]int, len(pts))
	crowd = make([]float64, len(pts))
	if len(pts) == 0 {
		return rank, crowd, nil
	}
	fronts = study.NonDominatedSort(pts, study.MinDirections(len(pts[0])))
	for r, f := range fronts {
		d := study.CrowdingDistance(pts, f)
		for i, idx := range f {
			rank[idx] = r
			crowd[idx] = d[i]
		}
	}
	return rank, crowd, fronts
}

// sortByCrowding orders a front's indices by crowding distance, largest first
// (stable: ties keep their order).
func sortByCrowding(front []int, crowd []float64) []int {
	out := make([]int, len(front))
	copy(out, front)
	sort.SliceStable(out, func(a, b int) bool { return crowd[out[a]] > crowd[out[b]] })
	return out
}
