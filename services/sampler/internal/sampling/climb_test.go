package sampling

import (
	"maps"
	"math"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// climbGood are five settings each worth 15 % more tokens per second, alone
// or together (climbSurface).
var climbGood = map[string]any{
	"page_size": 64, "cuda_graph_max_bs": 64, "num_continuous_decode_steps": 8,
	"tokenizer_worker_num": 4, "schedule_policy": "lpm",
}

func goodCount(p events.Params) int {
	n := 0
	for k, v := range climbGood {
		if study.ValueEqual(p[k], v) {
			n++
		}
	}
	return n
}

// climbSurface: TTFT falls with tp, tokens per second grow with tp and with
// each good setting; more than eight GPUs are rejected.
func climbSurface(p events.Params) Outcome {
	tp, dp, pp := study.AsInt(p, "tp_size", 1), study.AsInt(p, "dp_size", 1), study.AsInt(p, "pp_size", 1)
	if tp*dp*pp > 8 {
		return Outcome{Kind: Rejected, Rules: []string{"seed.gpu_count"}}
	}
	tps := 1000 * math.Sqrt(float64(tp)) * math.Pow(1.15, float64(goodCount(p)))
	return Outcome{Kind: Completed, Metrics: map[string]float64{"m1": 0.1 + 1/float64(tp), "m2": tps}}
}

// A study that has seen each good setting alone, never two together,
// proposes a configuration with four or more of them soon: the candidate
// set reaches three (two changes of the best trial, which has one); the
// climb on the acquisition takes the model's additive belief further.
func TestGPEHVIClimbsPastTheCandidateSet(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoGPEHVI, 60)
	s, err := NewStudy(sp, Options{Seed: ptr[int64](3)})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := Baseline(sp.Space)
	var history []events.Params
	for _, tp := range []int{1, 2, 4, 8} {
		p := maps.Clone(base)
		p["tp_size"], p["dp_size"], p["pp_size"] = tp, 1, 1
		history = append(history, p)
		for k, v := range climbGood {
			q := maps.Clone(p)
			q[k] = v
			history = append(history, q)
		}
	}
	for i, p := range history {
		o := climbSurface(p)
		o.Trial, o.Params = i, p
		if err := s.Tell(o); err != nil {
			t.Fatalf("Tell(%d): %v", i, err)
		}
	}
	most := 0
	for range 6 {
		props, err := s.Propose(1)
		if err != nil || len(props) != 1 {
			t.Fatalf("Propose: %v, %v", props, err)
		}
		most = max(most, goodCount(props[0].Params))
		o := climbSurface(props[0].Params)
		o.Trial = props[0].Trial
		if err := s.Tell(o); err != nil {
			t.Fatal(err)
		}
	}
	if most < 4 {
		t.Fatalf("the best of 6 proposals has %d of the 5 good settings, want 4 or more", most)
	}
}
