package sampling

import (
	"math/rand/v2"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
)

// NSGA-II over the categorical space, steady state: each proposal is one
// child of a parent population selected from every finished trial, so it
// works with asynchronous, parallel outcomes. Constraint handling is Deb's:
// a feasible trial beats an infeasible one; infeasible trials (failed,
// rejected, duplicate, SLO missed) rank after every feasible front, the
// smaller violation first.

const (
	crossoverProb = 0.9
	swapProb      = 0.5
)

// member is one parent candidate with its NSGA-II fitness.
type member struct {
	t     *trial
	rank  int
	crowd float64
}

// nsga2 is the nsga2 algorithm; its population is selected afresh from
// the history for every proposal, so it keeps no state.
type nsga2 struct{}

// propose proposes one child, or nil while there are fewer finished
// trials than a population (the study then samples at random).
func (nsga2) propose(v *view) ([]int, string, map[string]string) {
	pop := max(2, v.spec.Sampler.PopulationSize)
	var finished []*trial
	for _, t := range v.trials {
		if t.x != nil && t.status != statusPending {
			finished = append(finished, t)
		}
	}
	if len(finished) < pop {
		return nil, "", nil
	}
	parents := selectPopulation(finished, pop)
	p1 := tournament(parents, v.rng)
	p2 := tournament(parents, v.rng)
	child := crossover(p1.t.x, p2.t.x, v.rng)
	mutate(child, v.codec, v.rng)
	return child, study.AlgoNSGA2, nil
}

// selectPopulation chooses the pop best trials (elitist NSGA-II survival):
// feasible trials front by front, the overflowing front by crowding distance;
// then infeasible ones by violation, newest first.
func selectPopulation(trials []*trial, pop int) []member {
	var feas, infeas []*trial
	for _, t := range trials {
		if t.feasible {
			feas = append(feas, t)
		} else {
			infeas = append(infeas, t)
		}
	}
	pts := make([][]float64, len(feas))
	for i, t := range feas {
		pts[i] = t.y
	}
	rank, crowd, fronts := rankAndCrowd(pts)
	out := make([]member, 0, pop)
	for _, f := range fronts {
		for _, i := range sortByCrowding(f, crowd) {
			if len(out) == pop {
				return out
			}
			out = append(out, member{t: feas[i], rank: rank[i], crowd: crowd[i]})
		}
	}
	sort.SliceStable(infeas, func(a, b int) bool {
		if infeas[a].violation != infeas[b].violation {
			return infeas[a].violation < infeas[b].violation
		}
		return infeas[a].number > infeas[b].number
	})
	for _, t := range infeas {
		if len(out) == pop {
			break
		}
		// Infeasible trials rank after every feasible front, by violation.
		out = append(out, member{t: t, rank: len(fronts) + int(t.violation)})
	}
	return out
}

// tournament is binary tournament selection: of two distinct random
// members, the lower rank wins, then the larger crowding distance, then the
// first drawn.
func tournament(pop []member, rng *rand.Rand) member {
	if len(pop) == 1 {
		return pop[0]
	}
	i := rng.IntN(len(pop))
	j := rng.IntN(len(pop) - 1)
	if j >= i {
		j++
	}
	return better(pop[i], pop[j])
}

func better(a, b member) member {
	switch {
	case a.rank != b.rank:
		if a.rank < b.rank {
			return a
		}
		return b
	case a.crowd != b.crowd:
		if a.crowd > b.crowd {
			return a
		}
		return b
	}
	return a
}

// crossover is uniform crossover: with probability crossoverProb each gene
// comes from either parent with equal odds; otherwise the child copies a.
func crossover(a, b []int, rng *rand.Rand) []int {
	child := make([]int, len(a))
	copy(child, a)
	if rng.Float64() >= crossoverProb {
		return child
	}
	for j := range child {
		if rng.Float64() < swapProb {
			child[j] = b[j]
		}
	}
	return child
}

// mutate changes each gene with probability 1/d (d = parameters with more
// than one value) to a different value drawn uniformly.
func mutate(x []int, c *codec, rng *rand.Rand) {
	d := 0
	for _, v := range c.values {
		if len(v) > 1 {
			d++
		}
	}
	if d == 0 {
		return
	}
	p := 1 / float64(d)
	for j, v := range c.values {
		if len(v) > 1 && rng.Float64() < p {
			k := rng.IntN(len(v) - 1)
			if k >= x[j] {
				k++
			}
			x[j] = k
		}
	}
}
