package front

import (
	"math"

	"github.com/sgtune/sgtune/pkg/study"
)

// foldRuns recomputes a repeated configuration's entry from its runs so
// far: it holds up while every run completed feasibly; its values are the
// mean over the runs.
func (r *Report) foldRuns(lead *trial) {
	lead.holds, lead.mean = true, nil
	var sum []float64
	for _, m := range lead.runs {
		u := r.trials[m]
		if !u.feasible {
			lead.holds = false
			continue
		}
		if sum == nil {
			sum = make([]float64, len(u.values))
		}
		for i, v := range u.values {
			sum[i] += v
		}
	}
	if sum == nil {
		return
	}
	ok := 0
	for _, m := range lead.runs {
		if r.trials[m].feasible {
			ok++
		}
	}
	for i := range sum {
		sum[i] /= float64(ok)
	}
	lead.mean = sum
}

// repeatFront is the front of the repeated-configuration entries known once
// trial upTo is: the entries that hold up, by their mean, in trial order.
func (r *Report) repeatFront(nums []int, upTo int, dirs []study.Direction) []int {
	var cands []int
	var pts [][]float64
	for _, n := range nums {
		if n > upTo {
			break
		}
		t := r.trials[n]
		if t.repeatOf != nil || len(t.runs) == 0 || !t.holds || t.mean == nil {
			continue
		}
		cands = append(cands, n)
		pts = append(pts, t.mean)
	}
	var out []int
	for _, i := range study.ParetoFront(pts, dirs) {
		out = append(out, cands[i])
	}
	return out
}

// spread summarises each objective over a repeated entry's feasible runs.
func (r *Report) spread(lead *trial) map[string]RunSpread {
	out := map[string]RunSpread{}
	for i, o := range r.spec.Objectives {
		var vs []float64
		for _, m := range lead.runs {
			if u := r.trials[m]; u.feasible {
				vs = append(vs, u.values[i])
			}
		}
		if len(vs) == 0 {
			continue
		}
		s := RunSpread{N: len(vs), Min: vs[0], Max: vs[0]}
		for _, v := range vs {
			s.Mean += v / float64(len(vs))
			s.Min, s.Max = math.Min(s.Min, v), math.Max(s.Max, v)
		}
		if len(vs) > 1 {
			for _, v := range vs {
				s.Std += (v - s.Mean) * (v - s.Mean)
			}
			s.Std = math.Sqrt(s.Std / float64(len(vs)-1))
		}
		out[o.Name] = s
	}
	return out
}

// paramsKey identifies a configuration: its normalised parameters, sorted.
func paramsKey(p map[string]any) string { return study.ParamsKey(p) }
