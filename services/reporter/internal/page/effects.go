package page

import (
	"math"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Effect says how one parameter moves one objective: the mean objective of
// the feasible completed trials at each of its values. Spread is the range
// of those means relative to the objective's mean over all of them, so
// effects compare across objectives; Effects sorts by it, largest first.
type Effect struct {
	Param     string        `json:"param"`
	Objective string        `json:"objective"`
	Spread    float64       `json:"spread"`
	Values    []EffectValue `json:"values"`
	// Best is the value with the best mean for the objective's direction.
	Best string `json:"best"`
}

// EffectValue is the mean objective at one parameter value over N trials.
type EffectValue struct {
	Value string  `json:"value"`
	Mean  float64 `json:"mean"`
	N     int     `json:"n"`
}

// Effects computes, for every searched parameter and objective, the mean
// objective per value over the feasible completed trials (repeats folded into
// their first run are left out: they measure the same configuration). A
// parameter with fewer than two values seen, or an objective with no
// measurement, has no effect. It is a marginal view (other parameters vary
// too), which is what the page calls it.
func Effects(doc front.ResultsDoc, space study.Space) []Effect {
	var out []Effect
	for _, o := range doc.Objectives {
		var all []float64
		for _, t := range doc.Trials {
			if v, ok := t.Objectives[o.Name]; ok && t.Feasible && t.RepeatOf == nil && finite(v) {
				all = append(all, v)
			}
		}
		if len(all) < 2 {
			continue
		}
		overall := mean(all)
		for _, p := range space {
			groups := map[string][]float64{}
			var order []string
			for _, t := range doc.Trials {
				v, ok := t.Objectives[o.Name]
				if !ok || !t.Feasible || t.RepeatOf != nil || !finite(v) {
					continue
				}
				key := "None"
				if pv, ok := t.Parameters[p.Name]; ok {
					key = study.FormatValue(pv)
				}
				if _, seen := groups[key]; !seen {
					order = append(order, key)
				}
				groups[key] = append(groups[key], v)
			}
			if len(groups) < 2 {
				continue
			}
			// Values in the spec's order, then any other.
			rank := map[string]int{}
			for i, v := range p.Values {
				rank[study.FormatValue(v)] = i
			}
			sort.SliceStable(order, func(i, j int) bool {
				ri, iok := rank[order[i]]
				rj, jok := rank[order[j]]
				if iok != jok {
					return iok
				}
				return ri < rj
			})
			e := Effect{Param: p.Name, Objective: o.Name}
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, key := range order {
				m := mean(groups[key])
				e.Values = append(e.Values, EffectValue{Value: key, Mean: m, N: len(groups[key])})
				lo, hi = math.Min(lo, m), math.Max(hi, m)
				better := e.Best == "" || (o.Direction == string(study.Maximize) && m > bestMean(e)) ||
					(o.Direction != string(study.Maximize) && m < bestMean(e))
				if better {
					e.Best = key
				}
			}
			if overall != 0 {
				e.Spread = (hi - lo) / math.Abs(overall)
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Spread > out[j].Spread })
	return out
}

func bestMean(e Effect) float64 {
	for _, v := range e.Values {
		if v.Value == e.Best {
			return v.Mean
		}
	}
	return math.NaN()
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
