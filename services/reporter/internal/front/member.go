package front

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// headlineMetrics are copied into every front member besides the objectives'
// and constraints' own metrics.
var headlineMetrics = []string{
	"mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2e_latency_ms",
	"output_throughput", "request_throughput", "goodput", "startup_seconds",
}

// HeadlineMetrics lists the metrics every front member carries besides its
// objectives' and constraints' own (the CSV export's metric columns too).
func HeadlineMetrics() []string { return slices.Clone(headlineMetrics) }

// member is trial t's front-member document, with its gains over baseline (nil: none).
func (r *Report) member(t *trial, baseline *trial) FrontMember {
	spec := &r.spec
	values := t.values
	if t.mean != nil {
		values = t.mean
	}
	m := FrontMember{
		TrialNumber:   t.o.Trial,
		Parameters:    t.params,
		State:         StateComplete,
		Objectives:    r.byObjective(values),
		Units:         map[string]string{},
		LaunchCommand: r.launchCommand(t),
		Metrics:       map[string]float64{},
		Runner:        t.o.Runner,
		GPUModel:      t.o.GPUModel,
		SGLangVersion: t.o.SGLangVersion,
	}
	for _, name := range t.o.AdjustedParams {
		if m.Adjusted == nil {
			m.Adjusted = map[string]any{}
		}
		m.Adjusted[name] = t.o.EffectiveParams[name]
	}
	m.TTFT, m.TPS = seedValues(m.Objectives, t.o.Metrics)
	for _, o := range spec.Objectives {
		if o.Unit != "" {
			m.Units[o.Name] = o.Unit
		}
	}
	selected := append(slices.Clone(headlineMetrics), capacityMetrics...)
	for _, o := range spec.Objectives {
		selected = append(selected, o.Metric)
	}
	for _, c := range spec.Constraints {
		selected = append(selected, c.Metric)
	}
	for _, name := range selected {
		if v, ok := t.o.Metrics[name]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			m.Metrics[name] = v
			if u := t.o.Units[name]; u != "" {
				m.Units[name] = u
			}
		}
	}
	m.WorkloadObjectives = r.workloadObjectives(t)
	m.Curve = curveOf(t.o.LoadPoints)
	m.Capacity = capacityOf(spec, t.o.Metrics)
	if len(t.runs) > 0 && r.spec.Sampler.Repeats > 0 {
		m.Runs = slices.Clone(t.runs)
		m.Spread = r.spread(t)
	}
	if baseline != nil {
		for i, o := range spec.Objectives {
			b, v := baseline.values[i], values[i]
			if b <= 0 || v <= 0 {
				continue
			}
			if m.GainOverBaseline == nil {
				m.GainOverBaseline = map[string]float64{}
			}
			if o.Direction == study.Minimize {
				m.GainOverBaseline[o.Name] = b / v
			} else {
				m.GainOverBaseline[o.Name] = v / b
			}
		}
	}
	return m
}

// byObjective keys values, in the spec's objective order, by objective name.
func (r *Report) byObjective(values []float64) map[string]float64 {
	out := make(map[string]float64, len(values))
	for i, o := range r.spec.Objectives {
		out[o.Name] = values[i]
	}
	return out
}

// workloadObjectives are each workload's own objective values (a mix only;
// the workloads that measured every objective).
func (r *Report) workloadObjectives(t *trial) map[string]map[string]float64 {
	if !r.spec.HasMix() || len(t.o.WorkloadMetrics) == 0 {
		return nil
	}
	out := map[string]map[string]float64{}
	for name, metrics := range t.o.WorkloadMetrics {
		if vals, ok := r.spec.ObjectiveValues(metrics); ok && allFinite(vals) {
			out[name] = r.byObjective(vals)
		}
	}
	return nilIfEmpty(out)
}

// seedValues returns the seed's ttft (s) and tps (output tok/s) fields.
func seedValues(objectives map[string]float64, metrics map[string]float64) (ttft, tps *float64) {
	if v, ok := objectives["ttft"]; ok {
		ttft = &v
	} else if v, ok := metrics["mean_ttft_ms"]; ok {
		s := v / 1000
		ttft = &s
	}
	if v, ok := objectives["tps"]; ok {
		tps = &v
	} else if v, ok := metrics["output_throughput"]; ok {
		tps = &v
	}
	return ttft, tps
}

// launchCommand is the runner's argv, or the one the spec implies when the
// runner did not report it.
func (r *Report) launchCommand(t *trial) []string {
	if len(t.o.LaunchCommand) > 0 {
		return t.o.LaunchCommand
	}
	args, err := r.spec.LaunchArgs(events.Params(t.o.Params))
	if err != nil {
		return nil
	}
	return append(slices.Clone(r.spec.Model.ServerCommand), args...)
}

// record is trial t's entry in the results file.
func (r *Report) record(t *trial) TrialRecord {
	o := t.o
	rec := TrialRecord{
		TrialNumber:        o.Trial,
		State:              o.State,
		Parameters:         t.params,
		Feasible:           t.feasible,
		ParetoOptimal:      t.onFront,
		Violations:         t.violations,
		Metrics:            o.Metrics,
		Units:              o.Units,
		Reason:             o.Reason,
		WorkloadMetrics:    o.WorkloadMetrics,
		LoadPoints:         o.LoadPoints,
		WorkloadLoadPoints: o.WorkloadLoadPoints,
		FailureClass:       o.FailureClass,
		Rules:              o.Rejections,
		DuplicateOf:        o.DuplicateOf,
		RepeatOf:           t.repeatOf,
		LaunchCommand:      o.LaunchCommand,
		Runner:             o.Runner,
		Host:               o.Host,
		GPUModel:           o.GPUModel,
		GPUs:               o.GPUs,
		GPUSeconds:         o.GPUSeconds,
		Backend:            o.Backend,
		SGLangVersion:      o.SGLangVersion,
		ModelPathLoaded:    o.ModelPathLoaded,
		EffectiveParams:    o.EffectiveParams,
		AdjustedParams:     o.AdjustedParams,
		StartedAt:          o.StartedAt,
		FinishedAt:         o.FinishedAt,
		LogRef:             o.LogRef,
		LogTail:            o.LogTail,
		GPUUUIDs:           o.GPUUUIDs,
		DriverVersion:      o.DriverVersion,
		CUDAVersion:        o.CUDAVersion,
	}
	if t.values != nil {
		rec.Objectives = r.byObjective(t.values)
	}
	if o.State == StateComplete && !t.feasible && rec.Reason == "" {
		rec.Reason = "infeasible: " + strings.Join(t.violations, "; ")
	}
	if o.State == StateRejected && rec.Reason == "" && len(o.Rejections) > 0 {
		reasons := make([]string, len(o.Rejections))
		for i, rj := range o.Rejections {
			reasons[i] = rj.Rule + ": " + rj.Reason
		}
		rec.Reason = strings.Join(reasons, "; ")
	}
	return rec
}

// missingObjectives are the violations for objectives that metrics hold no finite value of.
func missingObjectives(spec *study.Spec, metrics map[string]float64) []string {
	var out []string
	for _, o := range spec.Objectives {
		v, ok := metrics[o.Metric]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("objective %s: %s was not measured", o.Name, o.Metric))
		case math.IsNaN(v) || math.IsInf(v, 0):
			out = append(out, fmt.Sprintf("objective %s: %s is not a finite number", o.Name, o.Metric))
		}
	}
	return out
}
