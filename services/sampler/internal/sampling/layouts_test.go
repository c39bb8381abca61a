package sampling

import (
	"maps"
	"math"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestLayoutsEnumeratesEveryGPUSplit(t *testing.T) {
	t.Parallel()
	c, err := newCodec(toySpace())
	if err != nil {
		t.Fatal(err)
	}
	ls := c.layouts()
	if len(ls) != 4*4*4 {
		t.Fatalf("%d layouts, want 64 (tp × dp × pp)", len(ls))
	}
	seen := map[[4]int]bool{}
	for _, l := range ls {
		if seen[l] {
			t.Fatalf("layout %v twice", l)
		}
		seen[l] = true
		x := c.withLayout(c.baseline(), l)
		if got := c.layoutOf(x); got != l {
			t.Fatalf("layoutOf(withLayout(%v)) = %v", l, got)
		}
	}
}

// layoutSurface: tokens per second grow with the GPUs and more with dp
// than with tp, TTFT falls with tp; page_size 64 is 10 % faster; more than
// eight GPUs are rejected.
func layoutSurface(p events.Params) Outcome {
	tp, dp, pp := float64(study.AsInt(p, "tp_size", 1)), float64(study.AsInt(p, "dp_size", 1)), float64(study.AsInt(p, "pp_size", 1))
	if tp*dp*pp > 8 {
		return Outcome{Kind: Rejected, Rules: []string{"seed.gpu_count"}}
	}
	tps := 1000 * dp * math.Pow(tp, 0.6) * math.Pow(pp, 0.3)
	if study.AsInt(p, "page_size", 0) == 64 {
		tps *= 1.1
	}
	return Outcome{Kind: Completed, Metrics: map[string]float64{"m1": 0.1 + 1/tp, "m2": tps}}
}

// A study whose first trials all ran with dp 1 tries the other splits of
// the front's GPU count soon after, under the best settings it found:
// without that the model predicts dp 8 like the tp 8 runs of the same GPU
// count with tp 1's TTFT (dominated) and never runs it.
func TestGPEHVITriesUntriedLayoutsOfTheFrontsGPUCount(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoGPEHVI, 40)
	s, err := NewStudy(sp, Options{Seed: ptr[int64](5)})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := Baseline(sp.Space)
	var history []events.Params
	for _, tp := range []int{1, 2, 4, 8} {
		for _, page := range []any{nil, 16, 64} { // 12 trials: past the startup
			p := maps.Clone(base)
			p["tp_size"], p["dp_size"], p["pp_size"], p["page_size"] = tp, 1, 1, page
			history = append(history, p)
		}
	}
	for i, p := range history {
		o := layoutSurface(p)
		o.Trial, o.Params = i, p
		if err := s.Tell(o); err != nil {
			t.Fatalf("Tell(%d): %v", i, err)
		}
	}
	newSplits, transplanted := 0, 0
	for range 8 {
		props, err := s.Propose(1)
		if err != nil || len(props) != 1 {
			t.Fatalf("Propose: %v, %v", props, err)
		}
		p := props[0].Params
		tp, dp, pp := study.AsInt(p, "tp_size", 1), study.AsInt(p, "dp_size", 1), study.AsInt(p, "pp_size", 1)
		if dp > 1 && tp*dp*pp == 8 {
			newSplits++
			if study.AsInt(p, "page_size", 0) == 64 {
				transplanted++
			}
		}
		o := layoutSurface(p)
		o.Trial = props[0].Trial
		if err := s.Tell(o); err != nil {
			t.Fatal(err)
		}
	}
	if newSplits < 2 || transplanted < 1 {
		t.Fatalf("%d of 8 proposals tried an 8-GPU split with dp > 1 (%d with the best settings found, page_size 64), want at least 2 (1)", newSplits, transplanted)
	}
}
