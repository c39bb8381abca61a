package main

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
	"github.com/sgtune/sgtune/sim"
	"github.com/sgtune/sgtune/sim/model"
)

// simSurface is the simulator's performance model for one model on one GPU
// model (sim/model.Evaluate on the launch flags a runner passes, parsed by
// sim.ParseLaunch exactly as sglang-sim parses them), with the
// simulator's kind of noise: 3 % lognormal on each metric. Launch errors
// (sim/model.LaunchError) are failures with SGLang's exception line.
type simSurface struct {
	name, gpu, preset, path string
	heldOut                 bool
	hw                      model.Hardware
}

func newSimSurface(name, gpu, preset, path string, heldOut bool) *simSurface {
	hw, ok := model.GPUPreset(gpu)
	if !ok {
		panic("samplerbench: unknown GPU preset " + gpu)
	}
	return &simSurface{name: name, gpu: gpu, preset: preset, path: path, heldOut: heldOut, hw: hw}
}

func (s *simSurface) Name() string  { return s.name }
func (s *simSurface) HeldOut() bool { return s.heldOut }
func (s *simSurface) Describe() string {
	return fmt.Sprintf("the simulator's model, %s on %s; the seed's 18 parameters and rules; 3 %% lognormal noise", s.preset, s.gpu)
}

func (s *simSurface) Spec() study.Spec {
	sp := benchSpec()
	sp.Model.Path = s.path
	return sp
}

func (s *simSurface) Measure(p events.Params, gpus int) Measurement {
	spec := s.Spec()
	v, err := validator.Check(spec, p, validator.CheckOptions{Baseline: true})
	if err != nil || !v.Valid {
		// The runner never sees an invalid config; a command fed one fails.
		return Measurement{Failed: true, Class: events.FailCrash, Stderr: "ValueError: invalid configuration"}
	}
	cfg, m, err := sim.ParseLaunch(v.LaunchArgs, s.preset)
	if err != nil {
		return Measurement{Failed: true, Class: events.FailCrash, Stderr: "sglang-sim: error: " + err.Error()}
	}
	hw := s.hw
	hw.NumGPUs = max(gpus, v.GPUs)
	w := spec.Workload
	res, err := model.Evaluate(cfg, hw, m, model.Workload{
		NumPrompts: w.NumPrompts, InputLen: w.RandomInputLen, OutputLen: w.RandomOutputLen,
		RangeRatio: w.RandomRangeRatio, MaxConcurrency: w.MaxConcurrency, RequestRate: w.RequestRate, Seed: w.Seed,
	})
	var le *model.LaunchError
	switch {
	case errors.As(err, &le):
		return Measurement{Failed: true, Class: le.Class, Stderr: le.Exception + ": " + le.Message}
	case err != nil:
		return Measurement{Failed: true, Class: events.FailBenchError, Stderr: "bench error: " + err.Error()}
	}
	out := res.Metrics()
	out["ttft"], out["tps"] = out["mean_ttft_ms"]/1000, out["output_throughput"]
	return Measurement{Metrics: out}
}

func (s *simSurface) Noisy(m Measurement, rng *rand.Rand) Measurement {
	if m.Failed {
		return m
	}
	ttft := lognormal(m.Metrics["ttft"], 0.03, rng)
	tps := lognormal(m.Metrics["tps"], 0.03, rng)
	return Measurement{Metrics: metrics(ttft, tps)}
}
