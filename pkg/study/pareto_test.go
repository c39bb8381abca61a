package study_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sgtune/sgtune/pkg/study"
)

var ttftTPS = []study.Direction{study.Minimize, study.Maximize}

func TestDominates(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		want bool
	}{
		{"better in both", []float64{0.1, 200}, []float64{0.2, 100}, true},
		{"better in one, equal other", []float64{0.1, 100}, []float64{0.2, 100}, true},
		{"equal", []float64{0.1, 100}, []float64{0.1, 100}, false},
		{"trade-off", []float64{0.1, 100}, []float64{0.2, 200}, false},
		{"worse", []float64{0.3, 50}, []float64{0.2, 100}, false},
	}
	for _, tt := range tests {
		if got := study.Dominates(tt.a, tt.b, ttftTPS); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestParetoFrontAndSort(t *testing.T) {
	pts := [][]float64{
		{0.10, 1000}, // 0 front
		{0.20, 2000}, // 1 front
		{0.15, 900},  // 2 dominated by 0
		{0.30, 1900}, // 3 dominated by 1
		{0.05, 500},  // 4 front
		{0.10, 1000}, // 5 tie with 0: front
		{0.40, 800},  // 6 dominated by 2 (rank 2)
	}
	if got := study.ParetoFront(pts, ttftTPS); !reflect.DeepEqual(got, []int{0, 1, 4, 5}) {
		t.Fatalf("front = %v", got)
	}
	fronts := study.NonDominatedSort(pts, ttftTPS)
	if !reflect.DeepEqual(fronts, [][]int{{0, 1, 4, 5}, {2, 3}, {6}}) {
		t.Fatalf("fronts = %v", fronts)
	}
	cd := study.CrowdingDistance(pts, []int{4, 0, 1})
	if !math.IsInf(cd[0], 1) || !math.IsInf(cd[2], 1) || cd[1] <= 0 {
		t.Fatalf("crowding = %v", cd)
	}
}

func TestHypervolume(t *testing.T) {
	// Minimise TTFT, maximise TPS; reference (1.0 s, 0 tok/s).
	ref := []float64{1.0, 0}
	tests := []struct {
		name string
		pts  [][]float64
		want float64
	}{
		{"empty", nil, 0},
		{"one point", [][]float64{{0.5, 100}}, 0.5 * 100},
		{"two trade-offs", [][]float64{{0.2, 100}, {0.5, 300}}, 0.8*100 + 0.5*200},
		{"dominated adds nothing", [][]float64{{0.2, 100}, {0.5, 300}, {0.6, 50}}, 0.8*100 + 0.5*200},
		{"outside the reference adds nothing", [][]float64{{1.5, 1000}}, 0},
	}
	for _, tt := range tests {
		if got := study.Hypervolume(tt.pts, ttftTPS, ref); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	// Three objectives, all minimised: two unit boxes overlapping in a 0.5 cube.
	dirs := []study.Direction{study.Minimize, study.Minimize, study.Minimize}
	pts := [][]float64{{0, 0, 0.5}, {0.5, 0.5, 0}}
	got := study.Hypervolume(pts, dirs, []float64{1, 1, 1})
	want := 1*1*0.5 + 0.5*0.5*1 - 0.5*0.5*0.5
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("3-D: got %v, want %v", got, want)
	}
}

// TestNonDominatedSortTwoObjectivesMatchesTheGeneralSort checks the
// two-objective fast path against Deb's sort (three objectives with a
// constant third) on random points with ties and duplicates.
func TestNonDominatedSortTwoObjectivesMatchesTheGeneralSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 1 + rng.IntN(60)
		pts2 := make([][]float64, n)
		pts3 := make([][]float64, n)
		for i := range n {
			a, b := float64(rng.IntN(8)), float64(rng.IntN(8))
			pts2[i], pts3[i] = []float64{a, b}, []float64{a, b, 0}
		}
		got := study.NonDominatedSort(pts2, ttftTPS)
		want := study.NonDominatedSort(pts3, []study.Direction{study.Minimize, study.Maximize, study.Minimize})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: points %v\n got %v\nwant %v", trial, pts2, got, want)
		}
	}
}
