package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/benchmark"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
	"github.com/sgtune/sgtune/services/validator"
	"github.com/sgtune/sgtune/sim"
	"github.com/sgtune/sgtune/sim/model"
)

// simEvaluator judges a configuration with the validator's rules
// (validator.Check: the safety rules and the spec's rule sets) and measures
// it with the simulator's noise-free performance model (model.Evaluate on the
// launch flags a runner would pass, parsed by sim.ParseLaunch exactly as
// sglang-sim parses them). It is what a study sees through the validator and
// a runner backed by sglang-sim, minus noise and wall-clock time.
type simEvaluator struct {
	spec  study.Spec
	hw    model.Hardware
	model string
	w     model.Workload
}

func newSimEvaluator(spec study.Spec, gpu, modelPreset string) (*simEvaluator, error) {
	hw, ok := model.GPUPreset(gpu)
	if !ok {
		return nil, fmt.Errorf("unknown GPU preset %q (known: %s)", gpu, strings.Join(model.GPUPresetNames(), ", "))
	}
	if _, ok := model.ModelPreset(modelPreset); !ok {
		return nil, fmt.Errorf("unknown model preset %q (known: %s)", modelPreset, strings.Join(model.ModelPresetNames(), ", "))
	}
	w := spec.Workload
	return &simEvaluator{spec: spec, hw: hw, model: modelPreset, w: model.Workload{
		NumPrompts: w.NumPrompts, InputLen: w.RandomInputLen, OutputLen: w.RandomOutputLen,
		RangeRatio: w.RandomRangeRatio, MaxConcurrency: w.MaxConcurrency, RequestRate: w.RequestRate, Seed: w.Seed,
	}}, nil
}

func (e *simEvaluator) Evaluate(p events.Params) benchmark.Verdict {
	v, err := validator.Check(e.spec, p, validator.CheckOptions{})
	if err != nil {
		return benchmark.Verdict{Kind: sampling.Rejected, Rules: []string{"safety.bad_input"}}
	}
	if !v.Valid {
		rules := make([]string, len(v.Rejections))
		for i, r := range v.Rejections {
			rules[i] = r.Rule
		}
		return benchmark.Verdict{Kind: sampling.Rejected, Rules: rules}
	}
	out := benchmark.Verdict{Canonical: v.CanonicalHash}
	cfg, m, err := sim.ParseLaunch(v.LaunchArgs, e.model)
	if err != nil {
		// sglang-sim exits 2 on a usage error: the runner sees a crash.
		out.Kind, out.FailureClass = sampling.Failed, events.FailCrash
		return out
	}
	hw := e.hw
	hw.NumGPUs = v.GPUs
	res, err := model.Evaluate(cfg, hw, m, e.w)
	var le *model.LaunchError
	switch {
	case errors.As(err, &le):
		out.Kind, out.FailureClass = sampling.Failed, le.Class
		out.LogTail = le.Exception + ": " + le.Message
	case err != nil:
		out.Kind, out.FailureClass = sampling.Failed, events.FailBenchError
	default:
		out.Kind, out.Metrics = sampling.Completed, res.Metrics()
	}
	return out
}
