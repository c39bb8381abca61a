package study

import (
	"math"
	"sort"
)

// MinForm maps a point to minimisation form: maximised objectives are
// negated. It is its own inverse (MinForm(MinForm(p)) == p).
func MinForm(p []float64, dirs []Direction) []float64 {
	out := make([]float64, len(p))
	for i, v := range p {
		out[i] = MinFormValue(v, dirs[i])
	}
	return out
}

// MinFormValue is one objective value in minimisation form (negated when
// maximised); its own inverse.
func MinFormValue(v float64, d Direction) float64 {
	if d == Maximize {
		return -v
	}
	return v
}

// MinDirections returns m Minimize directions: the directions of points in
// minimisation form.
func MinDirections(m int) []Direction {
	d := make([]Direction, m)
	for i := range d {
		d[i] = Minimize
	}
	return d
}

func toMin(p []float64, dirs []Direction) []float64 { return MinForm(p, dirs) }

// Dominates reports whether a Pareto-dominates b: at least as good in every
// objective and strictly better in one.
func Dominates(a, b []float64, dirs []Direction) bool {
	better := false
	for i := range a {
		x, y := a[i], b[i]
		if dirs[i] == Maximize {
			x, y = -x, -y
		}
		if x > y {
			return false
		}
		if x < y {
			better = true
		}
	}
	return better
}

// ParetoFront returns the indices of the non-dominated points, in input order.
// Identical points are all kept.
func ParetoFront(points [][]float64, dirs []Direction) []int {
	var out []int
	for i, p := range points {
		dominated := false
		for j, q := range points {
			if i != j && Dominates(q, p, dirs) {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, i)
		}
	}
	return out
}

// NonDominatedSort splits points into fronts (Deb's fast non-dominated sort):
// fronts[0] is the Pareto front, fronts[1] the front once fronts[0] is removed, ...
//
// Two objectives take O(n log n) (nonDominatedSort2), more take O(n²).
func NonDominatedSort(points [][]float64, dirs []Direction) [][]int {
	if len(dirs) == 2 {
		return nonDominatedSort2(points, dirs)
	}
	n := len(points)
	dominatedBy := make([]int, n)
	dominates := make([][]int, n)
	var fronts [][]int
	var first []int
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			if Dominates(points[i], points[j], dirs) {
				dominates[i] = append(dominates[i], j)
			} else if Dominates(points[j], points[i], dirs) {
				dominatedBy[i]++
			}
		}
		if dominatedBy[i] == 0 {
			first = append(first, i)
		}
	}
	cur := first
	for len(cur) > 0 {
		fronts = append(fronts, cur)
		var next []int
		for _, i := range cur {
			for _, j := range dominates[i] {
				dominatedBy[j]--
				if dominatedBy[j] == 0 {
					next = append(next, j)
				}
			}
		}
		sort.Ints(next)
		cur = next
	}
	return fronts
}

// CrowdingDistance returns NSGA-II's crowding distance of each point of one
// front (same order as idx); boundary points get +Inf.
func CrowdingDistance(points [][]float64, idx []int) []float64 {
	dist := make([]float64, len(idx))
	if len(idx) == 0 {
		return dist
	}
	m := len(points[idx[0]])
	order := make([]int, len(idx))
	for k := range m {
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return points[idx[order[a]]][k] < points[idx[order[b]]][k] })
		lo, hi := points[idx[order[0]]][k], points[idx[order[len(order)-1]]][k]
		dist[order[0]], dist[order[len(order)-1]] = math.Inf(1), math.Inf(1)
		if hi == lo {
			continue
		}
		for i := 1; i < len(order)-1; i++ {
			dist[order[i]] += (points[idx[order[i+1]]][k] - points[idx[order[i-1]]][k]) / (hi - lo)
		}
	}
	return dist
}

// Hypervolume is the volume of objective space dominated by points and bounded
// by the reference point ref (a point worse than every point of interest in
// every objective). Points that do not strictly improve on ref in every
// objective add nothing. Exact for any number of objectives (slicing over the
// last objective); meant for fronts of up to a few hundred points.
func Hypervolume(points [][]float64, dirs []Direction, ref []float64) float64 {
	r := toMin(ref, dirs)
	var pts [][]float64
	for _, p := range points {
		q := toMin(p, dirs)
		inside := true
		for i := range q {
			if !(q[i] < r[i]) {
				inside = false
				break
			}
		}
		if inside {
			pts = append(pts, q)
		}
	}
	return hvMin(pts, r)
}

// HypervolumeMin is Hypervolume for points and a reference point already
// in minimisation form (MinForm).
func HypervolumeMin(points [][]float64, ref []float64) float64 {
	return Hypervolume(points, MinDirections(len(ref)), ref)
}

func hvMin(pts [][]float64, ref []float64) float64 {
	if len(pts) == 0 {
		return 0
	}
	d := len(ref)
	if d == 1 {
		best := ref[0]
		for _, p := range pts {
			best = math.Min(best, p[0])
		}
		return ref[0] - best
	}
	if d == 2 {
		sorted := make([][]float64, len(pts))
		copy(sorted, pts)
		sort.Slice(sorted, func(i, j int) bool {
			if sorted[i][0] != sorted[j][0] {
				return sorted[i][0] < sorted[j][0]
			}
			return sorted[i][1] < sorted[j][1]
		})
		vol, prevY := 0.0, ref[1]
		for _, p := range sorted {
			if p[1] < prevY {
				vol += (ref[0] - p[0]) * (prevY - p[1])
				prevY = p[1]
			}
		}
		return vol
	}
	// Slice along the last objective: between consecutive distinct values, the
	// cross-section is the (d-1)-dimensional hypervolume of the points below.
	last := d - 1
	sorted := make([][]float64, len(pts))
	copy(sorted, pts)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i][last] < sorted[j][last] })
	vol := 0.0
	var active [][]float64
	for i, p := range sorted {
		active = append(active, p[:last])
		upper := ref[last]
		if i+1 < len(sorted) {
			upper = sorted[i+1][last]
		}
		if upper > p[last] {
			vol += hvMin(active, ref[:last]) * (upper - p[last])
		}
	}
	return vol
}

// nonDominatedSort2 is NonDominatedSort for two objectives: points in
// order of the first objective (then the second), each joins the first
// front none of whose points dominates it. A front's last point is its
// best in the second objective, and those are non-decreasing from front to
// front, so the front is found by binary search.
func nonDominatedSort2(points [][]float64, dirs []Direction) [][]int {
	n := len(points)
	pts := make([][2]float64, n)
	idx := make([]int, n)
	for i, p := range points {
		pts[i] = [2]float64{MinFormValue(p[0], dirs[0]), MinFormValue(p[1], dirs[1])}
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := pts[idx[a]], pts[idx[b]]
		if pa[0] != pb[0] {
			return pa[0] < pb[0]
		}
		return pa[1] < pb[1]
	})
	var fronts [][]int
	var last [][2]float64
	for _, i := range idx {
		p := pts[i]
		r := sort.Search(len(fronts), func(r int) bool {
			l := last[r]
			return !(l[1] < p[1] || (l[1] == p[1] && l[0] < p[0]))
		})
		if r == len(fronts) {
			fronts = append(fronts, nil)
			last = append(last, p)
		}
		fronts[r] = append(fronts[r], i)
		last[r] = p
	}
	for _, f := range fronts {
		sort.Ints(f)
	}
	return fronts
}
