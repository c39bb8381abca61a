package sampling

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

// tr builds a finished trial record; y nil means infeasible with violation v.
func tr(number int, y []float64, v float64) *trial {
	t := &trial{number: number, x: []int{number % 3}, y: y, feasible: y != nil, violation: v, status: statusCompleted}
	if y == nil {
		t.status = statusRejected
	}
	return t
}

func numbers(ms []member) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.t.number
	}
	return out
}

func TestSelectPopulation(t *testing.T) {
	t.Parallel()
	// Minimisation form. Front 0: 0 (1,5), 1 (2,3), 2 (4,1) and 3 (3,2).
	// Front 1: 4 (3,4), 5 (5,2). Front 2: 6 (6,6).
	trials := []*trial{
		tr(0, []float64{1, 5}, 0), tr(1, []float64{2, 3}, 0), tr(2, []float64{4, 1}, 0), tr(3, []float64{3, 2}, 0),
		tr(4, []float64{3, 4}, 0), tr(5, []float64{5, 2}, 0), tr(6, []float64{6, 6}, 0),
		tr(7, nil, 2), tr(8, nil, 1), tr(9, nil, 1),
	}
	tests := []struct {
		name      string
		givenPop  int
		expected  []int
		wantRanks []int
	}{
		// Front 0 by crowding: the extremes (0, 2: +Inf) first, then 1 (crowding
		// (3-1)/3 + (5-2)/4 = 1.4167) before 3 ((4-2)/3 + (3-1)/4 = 1.1667).
		{name: "part of the first front", givenPop: 3, expected: []int{0, 2, 1}, wantRanks: []int{0, 0, 0}},
		{name: "fronts in order", givenPop: 6, expected: []int{0, 2, 1, 3, 4, 5}, wantRanks: []int{0, 0, 0, 0, 1, 1}},
		// Infeasible after every feasible front: smaller violation first, then newer.
		{name: "infeasible last", givenPop: 9, expected: []int{0, 2, 1, 3, 4, 5, 6, 9, 8}, wantRanks: []int{0, 0, 0, 0, 1, 1, 2, 4, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := selectPopulation(trials, tc.givenPop)
			if !reflect.DeepEqual(numbers(got), tc.expected) {
				t.Fatalf("population %v, want %v", numbers(got), tc.expected)
			}
			var ranks []int
			for _, m := range got {
				ranks = append(ranks, m.rank)
			}
			if !reflect.DeepEqual(ranks, tc.wantRanks) {
				t.Fatalf("ranks %v, want %v", ranks, tc.wantRanks)
			}
		})
	}
}

func TestTournament(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    [2]member
		expected int
	}{
		{name: "lower rank wins", given: [2]member{{t: tr(0, nil, 0), rank: 1, crowd: 9}, {t: tr(1, nil, 0), rank: 0}}, expected: 1},
		{name: "then larger crowding", given: [2]member{{t: tr(0, nil, 0), rank: 0, crowd: 2}, {t: tr(1, nil, 0), rank: 0, crowd: 1}}, expected: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := better(tc.given[0], tc.given[1]); got.t.number != tc.expected {
				t.Fatalf("winner %d, want %d", got.t.number, tc.expected)
			}
			if got := better(tc.given[1], tc.given[0]); got.t.number != tc.expected {
				t.Fatalf("swapped: winner %d, want %d", got.t.number, tc.expected)
			}
		})
	}
	// Over many draws from a population, the worst member never wins.
	pop := []member{{t: tr(0, nil, 0), rank: 0}, {t: tr(1, nil, 0), rank: 1}, {t: tr(2, nil, 0), rank: 2}}
	rng := rand.New(rand.NewPCG(1, 2))
	wins := map[int]int{}
	for range 300 {
		wins[tournament(pop, rng).t.number]++
	}
	if wins[2] != 0 || wins[0] <= wins[1] {
		t.Fatalf("tournament wins %v", wins)
	}
}

func TestCrossoverAndMutation(t *testing.T) {
	t.Parallel()
	c, err := newCodec(toySpace())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	a := []int{0, 0, 0, 0, 0, 0, 0, 0}
	b := []int{1, 1, 1, 1, 1, 1, 1, 1}
	fromB, mutated := 0, 0
	for range 200 {
		child := crossover(a, b, rng)
		for _, v := range child {
			if v != 0 && v != 1 {
				t.Fatalf("crossover invented value %d", v)
			}
			fromB += v
		}
		before := append([]int(nil), child...)
		mutate(child, c, rng)
		for j := range child {
			if child[j] < 0 || child[j] >= len(c.values[j]) {
				t.Fatalf("mutation out of range: %v", child)
			}
			if child[j] != before[j] {
				mutated++
			}
		}
	}
	// About 0.9 × 0.5 of 1600 genes come from b, and 1/8 of them mutate.
	if fromB < 600 || fromB > 840 {
		t.Fatalf("%d of 1600 genes from b, want about 720", fromB)
	}
	if mutated < 140 || mutated > 270 {
		t.Fatalf("%d of 1600 genes mutated, want about 200", mutated)
	}
}

func TestSplitGoodBad(t *testing.T) {
	t.Parallel()
	pending := &trial{number: 20, x: []int{0}, status: statusPending}
	failed := &trial{number: 21, x: []int{0}, status: statusFailed, violation: 1}
	dup := &trial{number: 22, x: []int{0}, status: statusDuplicate, violation: 1}
	slo := &trial{number: 23, x: []int{0}, status: statusCompleted, y: []float64{0, 0}, violation: 1} // best values, but missed an SLO
	tests := []struct {
		name     string
		given    []*trial
		expected []int // good trial numbers, sorted
	}{
		{
			name:     "no feasible result: nothing is good",
			given:    []*trial{pending, failed, dup, slo},
			expected: nil,
		},
		{
			// 6 finished -> gamma 1: the single best of the first front by
			// hypervolume contribution is the knee point 1.
			name: "one good: the largest hypervolume contribution",
			given: []*trial{
				tr(0, []float64{0, 10}, 0), tr(1, []float64{2, 2}, 0), tr(2, []float64{10, 0}, 0),
				tr(3, []float64{5, 5}, 0), failed, slo, pending,
			},
			expected: []int{1},
		},
		{
			// 14 finished -> gamma 3: the whole first front (0, 1, 2), never
			// the SLO-missing trial with better values.
			name: "whole first front",
			given: []*trial{
				tr(0, []float64{0, 10}, 0), tr(1, []float64{2, 2}, 0), tr(2, []float64{10, 0}, 0),
				tr(3, []float64{5, 5}, 0), tr(4, []float64{6, 6}, 0), tr(5, []float64{7, 7}, 0),
				tr(6, []float64{8, 8}, 0), tr(7, []float64{9, 9}, 0), tr(8, []float64{9, 10}, 0),
				tr(9, []float64{10, 10}, 0), tr(10, []float64{11, 11}, 0), failed, dup, slo, pending,
			},
			expected: []int{0, 1, 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			good, bad := splitGoodBad(tc.given)
			var got []int
			for _, g := range good {
				got = append(got, g.number)
			}
			sort.Ints(got)
			if !reflect.DeepEqual(got, tc.expected) {
				t.Fatalf("good %v, want %v", got, tc.expected)
			}
			if len(good)+len(bad) != len(tc.given) {
				t.Fatalf("%d good + %d bad != %d trials", len(good), len(bad), len(tc.given))
			}
			for _, b := range bad {
				for _, g := range good {
					if b == g {
						t.Fatalf("trial %d both good and bad", b.number)
					}
				}
			}
		})
	}
}

func TestParzenPrefersObservations(t *testing.T) {
	t.Parallel()
	c, err := newCodec(toySpace())
	if err != nil {
		t.Fatal(err)
	}
	obs := [][]int{{0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 1}}
	p := newParzen(c, obs)
	near, far := []int{0, 0, 0, 0, 0, 0, 0, 2}, []int{3, 3, 3, 4, 5, 8, 4, 4}
	if !(p.logpdf(obs[0]) > p.logpdf(near) && p.logpdf(near) > p.logpdf(far)) {
		t.Fatalf("density not decreasing with distance: %v %v %v", p.logpdf(obs[0]), p.logpdf(near), p.logpdf(far))
	}
	if !(p.logpdfMarginal(near) > p.logpdfMarginal(far)) {
		t.Fatalf("marginal density not decreasing with distance")
	}
	// Marginals are distributions.
	for j, m := range p.marginals() {
		sum := 0.0
		for _, v := range m {
			sum += v
		}
		if !almostEqual(sum, 1) {
			t.Fatalf("marginal %d sums to %v", j, sum)
		}
	}
	// With no observation the density is uniform.
	u := newParzen(c, nil)
	if !almostEqual(u.logpdf(near), u.logpdf(far)) {
		t.Fatalf("empty estimator is not uniform")
	}
}
