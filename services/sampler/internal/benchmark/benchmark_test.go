package benchmark

import (
	"math"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// toySpec is a small two-objective problem: 4 parameters, a rule, a crash.
func toySpec() study.Spec {
	s := study.Default()
	s.StudyName = "toy"
	s.Space = study.Space{
		{Name: "tp_size", Values: []any{1, 2, 4, 8}},
		{Name: "dp_size", Values: []any{1, 2, 4, 8}},
		{Name: "page_size", Values: []any{nil, 16, 32, 64}},
		{Name: "enable_two_batch_overlap", Values: []any{false, true}},
	}
	s.Sampler.StartupTrials = 4
	return s
}

// toyEval: more GPUs give more throughput and lower TTFT, page size trades
// one against the other; over 8 GPUs is rejected, two-batch overlap
// crashes, and tp 2 × dp 1 is the same config as tp 2 × dp 1 with page 16
// (a canonical duplicate).
var toyEval = EvaluatorFunc(func(p events.Params) Verdict {
	tp, dp := study.AsInt(p, "tp_size", 1), study.AsInt(p, "dp_size", 1)
	if tp*dp > 8 {
		return Verdict{Kind: sampling.Rejected, Rules: []string{"seed.gpu_count"}}
	}
	if p["enable_two_batch_overlap"] == true {
		return Verdict{Kind: sampling.Failed, FailureClass: events.FailCrash, LogTail: "AssertionError: Two-batch overlap requires --moe-a2a-backend"}
	}
	page := study.AsInt(p, "page_size", 0)
	canon := ParamsKey(p)
	if tp == 2 && dp == 1 && page == 16 {
		canon = ParamsKey(events.Params{"tp_size": 2, "dp_size": 1, "page_size": nil, "enable_two_batch_overlap": false})
	}
	g := float64(tp * dp)
	return Verdict{Kind: sampling.Completed, Canonical: canon, Metrics: map[string]float64{
		"mean_ttft_ms":      1000 / g * (1 + float64(page)/100),
		"output_throughput": 1000 * g * (1 + float64(page)/200) / float64(tp),
	}}
})

func TestRunStudyCountsEveryOutcome(t *testing.T) {
	t.Parallel()
	spec := toySpec()
	for _, v := range []Variant{
		{Name: "motpe", Algorithm: sampling.AlgoMOTPE},
		{Name: "motpe-b4", Algorithm: sampling.AlgoMOTPE, Batch: 4},
		{Name: "nsga2-seed", Algorithm: sampling.AlgoNSGA2, IgnoreInvalid: true},
		{Name: "random", Algorithm: sampling.AlgoRandom},
	} {
		r, err := RunStudy(spec, v, 1, 20, NewCache(toyEval))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		c := r.Counters
		if len(r.Points) != 20 || c.Benchmarked() != 20 || c.InFlight != 0 {
			t.Fatalf("%s: %d points, counters %+v; want 20 benchmarked, none in flight", v.Name, len(r.Points), c)
		}
		if c.Proposed != c.Benchmarked()+c.Rejected {
			t.Fatalf("%s: counters %+v do not add up", v.Name, c)
		}
		for i, p := range r.Points {
			if (p == nil) != (r.Configs[i] == nil) {
				t.Fatalf("%s: point %d and its config disagree", v.Name, i)
			}
		}
	}
}

func TestSearchFrontFindsTheOptimum(t *testing.T) {
	t.Parallel()
	spec := toySpec()
	front, stats := SearchFront(spec, toyEval, SearchOptions{Random: 5, Seed: 1, Pairs: true, Workers: 2})
	// The whole space has 128 configurations; the search must see the best:
	// 8 GPUs as dp 8 (throughput) and page_size None/64 trade-offs.
	if stats.Proposed == 0 || len(front) == 0 {
		t.Fatalf("no front: %+v", stats)
	}
	best := 0.0
	for _, m := range front {
		best = math.Max(best, m.Values[1])
	}
	if want := 1000.0 * 8 * 1.32; math.Abs(best-want) > 1e-9 {
		t.Fatalf("best throughput %.1f, want %.1f", best, want)
	}
	dirs := spec.Directions()
	for _, a := range front {
		for _, b := range front {
			if study.Dominates(a.Values, b.Values, dirs) {
				t.Fatalf("front member %v dominates %v", a.Values, b.Values)
			}
		}
	}
}

func TestHypervolumeAtAndSummarize(t *testing.T) {
	t.Parallel()
	dirs := []study.Direction{study.Minimize, study.Maximize}
	r := Run{Points: [][]float64{{1, 1}, nil, {0.5, 2}}}
	ref := []float64{2, 0}
	if got := HypervolumeAt(r, 1, dirs, ref); got != 1 {
		t.Fatalf("after 1: %v, want 1", got)
	}
	if got := HypervolumeAt(r, 10, dirs, ref); got != 3 {
		t.Fatalf("after all: %v, want 3", got)
	}
	s := Summarize([]float64{3, 1, 2, 10})
	if s.Median != 2.5 || s.Min != 1 || s.Max != 10 || s.N != 4 {
		t.Fatalf("summary %+v", s)
	}
}
