package sampling

import (
	"errors"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// TestPriorIsOverriddenByOwnResults: a finished study's failure cause is
// screened from the start of a warm-started study, its best configuration is
// proposed right after the baseline, and the first own result that
// contradicts the prior drops it.
func TestPriorIsOverriddenByOwnResults(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoGPEHVI, 30)
	params := func(tp, dp int, policy string) events.Params {
		p := events.Params{"tp_size": tp, "dp_size": dp, "pp_size": 1, "schedule_policy": policy, "page_size": nil,
			"cuda_graph_max_bs": nil, "num_continuous_decode_steps": 1, "tokenizer_worker_num": 1}
		return p
	}
	crash := func(p events.Params) Outcome {
		return Outcome{Kind: Failed, FailureClass: events.FailCrash, FailureCause: "RuntimeError: lof is broken", Params: p}
	}
	done := func(p events.Params, m1, m2 float64) Outcome {
		return Outcome{Kind: Completed, Metrics: map[string]float64{"m1": m1, "m2": m2}, Params: p}
	}
	prior, err := NewPrior(sp, []PriorStudy{{Name: "old", Space: sp.Space, Outcomes: []Outcome{
		done(params(1, 1, "fcfs"), 1, 5), done(params(2, 2, "lpm"), 0.5, 9), done(params(1, 2, "random"), 2, 4),
		crash(params(1, 1, "lof")), crash(params(2, 1, "lof")),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	seed := int64(1)
	s, err := NewStudy(sp, Options{Seed: &seed, Prior: prior})
	if err != nil {
		t.Fatal(err)
	}
	props, err := s.Propose(2)
	if err != nil || len(props) != 2 {
		t.Fatalf("Propose: %v, %v", props, err)
	}
	if props[0].Sampler != SamplerBaseline || props[1].Sampler != SamplerWarmStart || props[1].Params["schedule_policy"] != "lpm" {
		t.Fatalf("proposals %+v: want the baseline, then the prior's best (lpm)", props)
	}
	lof, _ := s.codec.encode(params(4, 2, "lof"))
	s.feas.update(s.h.trials)
	if !s.feas.knownFailure(lof) {
		t.Fatal("the prior's failure cause (lof, seen twice) is not screened")
	}
	// Here lof works: the first lof trial completes, and the prior's
	// prediction for the cause goes.
	p, _ := s.codec.encode(params(1, 4, "lof"))
	tr, err := s.record(s.next, p, keyOf(p), s.codec.decode(p), "test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tell(Outcome{Trial: tr.number, Kind: Completed, Metrics: map[string]float64{"m1": 1, "m2": 6}}); err != nil {
		t.Fatal(err)
	}
	s.feas.update(s.h.trials)
	if s.feas.knownFailure(lof) {
		t.Fatal("the prior still screens lof after a lof trial completed")
	}
	// Another space: an error naming the study.
	other := sp.Space[:3]
	if _, err := NewPrior(sp, []PriorStudy{{Name: "elsewhere", Space: other}}); !errors.Is(err, ErrWarmStart) {
		t.Fatalf("other space: %v", err)
	}
}
