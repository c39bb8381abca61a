package sampling

import (
	"math"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// toySpace has 8 parameters (4-9 values each, about 1.3 M configurations).
func toySpace() study.Space {
	return study.Space{
		{Name: "tp_size", Values: []any{1, 2, 4, 8}},
		{Name: "dp_size", Values: []any{1, 2, 4, 8}},
		{Name: "pp_size", Values: []any{1, 2, 4, 8}},
		{Name: "schedule_policy", Values: []any{"fcfs", "lpm", "random", "dfs-weight", "lof"}},
		{Name: "page_size", Values: []any{nil, 16, 32, 64, 128, 256}},
		{Name: "cuda_graph_max_bs", Values: []any{nil, 8, 16, 24, 32, 48, 64, 80, 96}},
		{Name: "num_continuous_decode_steps", Values: []any{1, 2, 4, 8, 16}},
		{Name: "tokenizer_worker_num", Values: []any{1, 2, 4, 8, 16}},
	}
}

// toySpec is a two-objective study over toySpace: m1 minimised, m2 maximised.
func toySpec(algo string, nTrials int) study.Spec {
	s := study.Default()
	s.StudyName = "toy"
	s.NTrials = nTrials
	s.Space = toySpace()
	s.Objectives = []study.Objective{
		{Name: "f1", Metric: "m1", Scale: 1, Direction: study.Minimize},
		{Name: "f2", Metric: "m2", Scale: 1, Direction: study.Maximize},
	}
	s.Sampler.Algorithm = algo
	s.Sampler.StartupTrials = 10
	s.Sampler.PopulationSize = 10
	return s
}

// toyEval is the toy problem: with u the index vector scaled to [0, 1], f1
// = |u - 0.2|² and f2 = 10 - |u - 0.8|² (a convex front between the two
// targets), and configurations with tp*dp*pp > 8 are rejected.
func toyEval(p events.Params, sp study.Space) Outcome {
	if study.AsInt(p, "tp_size", 1)*study.AsInt(p, "dp_size", 1)*study.AsInt(p, "pp_size", 1) > 8 {
		return Outcome{Kind: Rejected, Rules: []string{"seed.gpu_count"}}
	}
	var f1, f2 float64
	for _, ps := range sp {
		idx := 0
		for i, v := range ps.Values {
			if study.ValueEqual(v, p[ps.Name]) {
				idx = i
			}
		}
		u := float64(idx) / float64(len(ps.Values)-1)
		f1 += (u - 0.2) * (u - 0.2)
		f2 += (u - 0.8) * (u - 0.8)
	}
	return Outcome{Kind: Completed, Metrics: map[string]float64{"m1": f1, "m2": 10 - f2}}
}

// toyRef bounds the toy problem's objectives (worse than any point).
var toyRef = []float64{8 * 0.8 * 0.8 * 1.01, 10 - 8*0.8*0.8*1.01}

// runToy runs a sequential study of the toy problem until n trials are
// benchmarked and returns its hypervolume.
func runToy(t testing.TB, algo string, seed int64, n, batch int) (float64, *Study) {
	t.Helper()
	sp := toySpec(algo, n)
	s, err := NewStudy(sp, Options{Seed: &seed})
	if err != nil {
		t.Fatalf("NewStudy: %v", err)
	}
	now := time.Unix(0, 0)
	for {
		if done, _ := s.Done(now); done {
			break
		}
		props, err := s.Propose(s.Room(batch))
		if err != nil {
			t.Fatalf("Propose: %v", err)
		}
		for _, p := range props {
			o := toyEval(p.Params, sp.Space)
			o.Trial = p.Trial
			if err := s.Tell(o); err != nil {
				t.Fatalf("Tell: %v", err)
			}
		}
	}
	return s.Hypervolume(toyRef), s
}

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func almostEqual(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func ptr[T any](v T) *T { return &v }
