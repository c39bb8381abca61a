package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/benchmark"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// referenceFile caches the best known front of one problem.
type referenceFile struct {
	// Fingerprint identifies the problem (spec, GPU, model, baseline result).
	Fingerprint    string                `json:"fingerprint"`
	GPU            string                `json:"gpu"`
	Model          string                `json:"model"`
	Baseline       []float64             `json:"baseline"`
	ReferencePoint []float64             `json:"reference_point"`
	Rule           string                `json:"reference_rule"`
	SearchRandom   int                   `json:"search_random"`
	SearchPairs    bool                  `json:"search_pairs"`
	Stats          benchmark.SearchStats `json:"search_stats"`
	Hypervolume    float64               `json:"hypervolume"`
	Front          []benchmark.Member    `json:"front"`
}

// fingerprint names the problem: what the search space, rules, objectives
// and workload are, on which GPU and model, and what the model says about
// the baseline (a change of the performance model shows there).
func fingerprint(spec study.Spec, o options, baseline []float64) string {
	b, _ := json.Marshal(struct {
		Space       study.Space
		Rules       study.Rules
		DeviceNum   int
		Objectives  []study.Objective
		Constraints []study.Constraint
		Workload    any
		GPU, Model  string
		Baseline    []float64
	}{spec.Space, spec.Rules, spec.DeviceNum, spec.Objectives, spec.Constraints, spec.Workload, o.gpu, o.model, baseline})
	return string(b)
}

// loadReference reads the cache and checks it still describes the problem:
// same fingerprint, and every front member still evaluates to its values.
func loadReference(path, fp string, spec study.Spec, eval benchmark.Evaluator) ([]benchmark.Member, referenceFile, error) {
	var rf referenceFile
	if path == "" {
		return nil, rf, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, rf, nil
	}
	if err != nil {
		return nil, rf, err
	}
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, rf, fmt.Errorf("%s: %w", path, err)
	}
	if rf.Fingerprint != fp {
		return nil, rf, fmt.Errorf("%s describes another problem (or an older model)", path)
	}
	for _, m := range rf.Front {
		v := eval.Evaluate(m.Params)
		vals, ok := spec.ObjectiveValues(v.Metrics)
		if v.Kind != sampling.Completed || !ok || len(vals) != len(m.Values) {
			return nil, rf, fmt.Errorf("%s: a front member no longer completes", path)
		}
		for i := range vals {
			if math.Abs(vals[i]-m.Values[i]) > 1e-9*math.Max(1, math.Abs(vals[i])) {
				return nil, rf, fmt.Errorf("%s: a front member evaluates differently now", path)
			}
		}
	}
	return rf.Front, rf, nil
}
