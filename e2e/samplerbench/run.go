package main

import (
	"fmt"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler"
)

// variant is one sampler setting under test.
type variant struct {
	// name labels it in reports: the algorithm, "-seq" for one trial in
	// flight or "-par" for as many as the fleet's slots.
	name string
	algo string
	// parallel: as many trials in flight as the fleet has slots (8, one
	// runner with 8 GPUs); else one.
	parallel bool
	// seedMode hides invalid trials from the algorithm (the seed's NSGA-II).
	seedMode bool
	// startup, when > 0, overrides the spec's sampler.startup_trials.
	startup int
}

func (v variant) capacity() int {
	if v.parallel {
		return fleetSlots
	}
	return 1
}

// The simulated fleet: one runner with 8 GPUs, as many slots.
const (
	fleetGPUs  = 8
	fleetSlots = 8
)

// variants are the settings the benchmark knows.
func variants() []variant {
	var out []variant
	for _, a := range []string{study.AlgoGPEHVI, study.AlgoMOTPE, study.AlgoScalarizedTPE, study.AlgoNSGA2, study.AlgoRandom} {
		out = append(out, variant{name: a + "-seq", algo: a}, variant{name: a + "-par", algo: a, parallel: true})
	}
	for _, a := range []string{study.AlgoTPE, study.AlgoCMAES} {
		out = append(out, variant{name: a + "-seq", algo: a}, variant{name: a + "-par", algo: a, parallel: true})
	}
	out = append(out, variant{name: "nsga2-seed-seq", algo: study.AlgoNSGA2, seedMode: true},
		variant{name: "gp-ehvi-par-s5", algo: study.AlgoGPEHVI, parallel: true, startup: 5},
		variant{name: "gp-ehvi-par-s16", algo: study.AlgoGPEHVI, parallel: true, startup: 16},
		variant{name: "gp-ehvi-seq-s16", algo: study.AlgoGPEHVI, startup: 16},
		variant{name: "gp-ehvi-seq-s5", algo: study.AlgoGPEHVI, startup: 5})
	return out
}

func variantByName(name string) (variant, bool) {
	for _, v := range variants() {
		if v.name == name {
			return v, true
		}
	}
	return variant{}, false
}

// trialRecord is one benchmarked trial of a study, in outcome order.
type trialRecord struct {
	trial  int
	params events.Params
	// values are the configuration's noise-free objective values when it
	// completed feasibly (the study is scored on them), else nil.
	values []float64
	failed bool
	cause  string // class and normalised decisive line of a failure
	// knownCause: failed for a cause an earlier result had shown before
	// this trial was proposed (a launch the sampler could have saved).
	knownCause bool
	// proposedAt and doneAt in the study's clock (simulated offline, wall
	// clock through the services).
	proposedAt, doneAt time.Duration
}

// runResult is one study.
type runResult struct {
	surface, variant string
	seed             int64
	budget           int
	trials           []trialRecord
	rejected         int
	proposeTimes     []time.Duration
	wall             time.Duration
	// gpuIdle is the fraction of GPU-time idle between the first trial
	// start and the last end (parallel studies).
	gpuBusy float64
}

// hvAt is the hypervolume of the feasible trials among the first n.
func (pr *problem) hvAt(r runResult, n int) float64 {
	var pts [][]float64
	for _, t := range r.trials[:min(n, len(r.trials))] {
		if t.values != nil {
			pts = append(pts, t.values)
		}
	}
	return study.Hypervolume(pts, pr.dirs, pr.ref)
}

// wasted counts, among the benchmarked trials after the first `after`, how
// many failed for a cause already seen, and how many there are.
func wasted(r runResult, after int) (known, launches int) {
	for i, t := range r.trials {
		if i < after {
			continue
		}
		launches++
		if t.knownCause {
			known++
		}
	}
	return known, launches
}

// trialsTo is the number of benchmarked trials after which the study's
// hypervolume first reaches frac of the best known (0: never).
func (pr *problem) trialsTo(r runResult, frac float64) int {
	for n := 1; n <= len(r.trials); n++ {
		if pr.hvAt(r, n) >= frac*pr.bestH {
			return n
		}
	}
	return 0
}

// causeOf is the failure key the benchmark counts causes by: the class and
// the sampler's normalised decisive line.
func causeOf(class, logTail, reason string) string {
	return class + ":" + sampler.FailureCause(logTail, reason)
}

// execReason is the runner's reason for a failed exec-backend command
// (execbackend's wording), which is also its log tail.
func execReason(m Measurement) string {
	return fmt.Sprintf("benchmark command failed: exit status 1; stderr: %s", m.Stderr)
}

// accepts reports whether the setting runs on the problem: goptuna's
// single-objective algorithms only where there is one objective.
func (pr *problem) accepts(v variant) bool {
	return len(pr.spec.Objectives) == 1 || !study.SingleObjectiveOnly(v.algo)
}
