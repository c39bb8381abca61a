package front

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sgtune/sgtune/pkg/events"
)

// FrontDoc is a study's Pareto front: the value of KV pareto/front.<study>
// (and pareto/front for the latest study). It is a superset of the seed's
// JSON output ({study_name, n_trials, pareto_front: [{trial_number, ttft, tps,
// parameters, state}]}). It always encodes as compact, single-line, ASCII-only
// JSON (see MarshalJSON), so `nats kv get pareto front` prints it as text.
type FrontDoc struct {
	// StudyName names the study.
	StudyName string `json:"study_name"`
	// NTrials is the number of benchmarked trials (COMPLETE + FAILED), the seed's n_trials.
	NTrials int `json:"n_trials"`
	// ParetoFront lists the non-dominated feasible completed trials, by trial number.
	ParetoFront []FrontMember `json:"pareto_front"`
	// Objectives are the study's objectives, in spec order.
	Objectives []ObjectiveInfo `json:"objectives"`
	// Units gives each objective's unit ("s", "tok/s").
	Units map[string]string `json:"units"`
	// Hypervolume of the front, against ReferencePoint (0 without one).
	Hypervolume float64 `json:"hypervolume"`
	// ReferencePoint is the fixed hypervolume reference, per objective (absent
	// until a trial completed); Reference says how it was chosen.
	ReferencePoint map[string]float64 `json:"reference_point,omitempty"`
	Reference      *ReferenceInfo     `json:"reference,omitempty"`
	// Baseline is trial 0 when it completed; gains are measured against it.
	Baseline *BaselineInfo `json:"baseline,omitempty"`
	// Counts of outcomes by kind, failure class and rejection rule.
	Counts Counts `json:"counts"`
	// Curves says how the members' curves are drawn: the load axis and the
	// SLO lines (absent when no trial measured more than one level).
	Curves *CurvesInfo `json:"curves,omitempty"`
	// GPUHours is the GPU time the study's trials held, pruned and failed
	// ones included (each trial's GPUs times its launch-to-stop wall time).
	GPUHours float64 `json:"gpu_hours"`
	// StartedAt is when the study (this run of it) started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// UpdatedAt is the time of the newest outcome folded in (not the wall
	// clock, so a rebuild gives the same document).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// FrontMember is one Pareto-optimal trial.
type FrontMember struct {
	TrialNumber int `json:"trial_number"`
	// TTFT (seconds) and TPS (output tokens/s) keep the seed's names and units:
	// the objectives named ttft and tps, else mean_ttft_ms/1000 and
	// output_throughput when measured.
	TTFT *float64 `json:"ttft,omitempty"`
	TPS  *float64 `json:"tps,omitempty"`
	// Parameters is the trial's configuration (null = None).
	Parameters map[string]any `json:"parameters"`
	// State is always COMPLETE.
	State string `json:"state"`
	// Objectives are the objective values (scaled, in Units).
	Objectives map[string]float64 `json:"objectives"`
	// Units of Objectives and Metrics.
	Units map[string]string `json:"units,omitempty"`
	// LaunchCommand is the argv the server ran with.
	LaunchCommand []string `json:"launch_command,omitempty"`
	// Metrics is a selection of the measured metrics (objectives', SLOs' and headline ones).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Curve is the member's latency against load (a ladder or a capacity
	// search measured on its one server), in load order; Capacity its
	// capacity under the SLO when the study searched for it.
	Curve    []CurvePoint  `json:"curve,omitempty"`
	Capacity *CapacityInfo `json:"capacity,omitempty"`
	// WorkloadObjectives are, when the study tunes for a mix, each
	// workload's own objective values (Objectives aggregate them).
	WorkloadObjectives map[string]map[string]float64 `json:"workload_objectives,omitempty"`
	// GainOverBaseline is, per objective, how many times better than the
	// baseline this trial is: baseline/value when minimising, value/baseline
	// when maximising (above 1 is better in both cases).
	GainOverBaseline map[string]float64 `json:"gain_over_baseline,omitempty"`
	// Runs lists the trials that measured this configuration when the spec
	// asks for repeats (sampler.repeats): this trial first, then its repeat
	// runs. Objectives are then the mean over the runs, and Spread gives each
	// objective's statistics.
	Runs     []int                `json:"runs,omitempty"`
	Spread   map[string]RunSpread `json:"spread,omitempty"`
	Runner   string               `json:"runner,omitempty"`
	GPUModel string               `json:"gpu_model,omitempty"`
	// SGLangVersion is the version the member's server reported; Adjusted
	// the values SGLang ran instead of the ones asked (name -> effective
	// value; the asked ones are in Parameters or the static flags).
	SGLangVersion string         `json:"sglang_version,omitempty"`
	Adjusted      map[string]any `json:"adjusted,omitempty"`
}

// CurvePoint is one measured load level of a front member's curve.
type CurvePoint struct {
	// Level is the level's concurrency or request rate (CurvesInfo.Axis).
	Level            float64  `json:"level"`
	MeanTTFTMs       *float64 `json:"mean_ttft_ms,omitempty"`
	P99TTFTMs        *float64 `json:"p99_ttft_ms,omitempty"`
	MeanTPOTMs       *float64 `json:"mean_tpot_ms,omitempty"`
	P99TPOTMs        *float64 `json:"p99_tpot_ms,omitempty"`
	OutputThroughput *float64 `json:"output_throughput,omitempty"`
	// SLOMet is the capacity search's verdict on the level (absent: no SLO).
	SLOMet *bool `json:"slo_met,omitempty"`
	// Error says why the level failed (the ladder stopped there).
	Error string `json:"error,omitempty"`
}

// CapacityInfo is a front member's capacity under the study's SLO.
type CapacityInfo struct {
	// Search is "concurrency" or "request_rate"; Level the capacity found
	// (0: no level met the SLO).
	Search string  `json:"search"`
	Level  float64 `json:"level"`
	// OutputThroughput at capacity, in all and per GPU (when known).
	OutputThroughput       *float64 `json:"output_throughput,omitempty"`
	OutputThroughputPerGPU *float64 `json:"output_throughput_per_gpu,omitempty"`
	Goodput                *float64 `json:"goodput,omitempty"`
	GPUs                   int      `json:"gpus,omitempty"`
}

// CurvesInfo says how front members' curves are drawn.
type CurvesInfo struct {
	// Axis is "max_concurrency" or "request_rate".
	Axis string `json:"axis"`
	// SLO maps a latency metric (p99_ttft_ms, p99_tpot_ms, ...) to its bound
	// in ms: the capacity search's SLO and the study's upper constraints.
	SLO map[string]float64 `json:"slo,omitempty"`
}

// RunSpread summarises one objective over the runs of a repeated
// configuration.
type RunSpread struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	// Std is the sample standard deviation (0 for one run).
	Std float64 `json:"std"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// ObjectiveInfo describes one objective.
type ObjectiveInfo struct {
	Name      string  `json:"name"`
	Direction string  `json:"direction"`
	Unit      string  `json:"unit,omitempty"`
	Metric    string  `json:"metric"`
	Scale     float64 `json:"scale,omitempty"`
}

// ReferenceInfo says how the hypervolume's reference point was chosen.
type ReferenceInfo struct {
	// AnchorTrial is the trial the point is derived from.
	AnchorTrial int `json:"anchor_trial"`
	// Rule states the derivation in words.
	Rule string `json:"rule"`
}

// BaselineInfo is the baseline trial's objective values.
type BaselineInfo struct {
	TrialNumber int                `json:"trial_number"`
	Objectives  map[string]float64 `json:"objectives"`
	// SGLangDefaults is true when the spec ran trial 0 with SGLang's defaults.
	SGLangDefaults bool `json:"sglang_defaults"`
}

// Counts counts a study's outcomes.
type Counts struct {
	// Outcomes = Benchmarked + Rejected.
	Outcomes int `json:"outcomes"`
	// Benchmarked = Completed + Failed + Pruned.
	Benchmarked int `json:"benchmarked"`
	Completed   int `json:"completed"`
	// Pruned trials were stopped early (sampler.early_stop).
	Pruned int `json:"pruned"`
	// Feasible completed trials met every SLO and have every objective; Infeasible did not.
	Feasible   int `json:"feasible"`
	Infeasible int `json:"infeasible"`
	Failed     int `json:"failed"`
	// FailedByClass counts failures by class (oom, crash, timeout, unhealthy, bench-error, unknown).
	FailedByClass map[string]int `json:"failed_by_class,omitempty"`
	Rejected      int            `json:"rejected"`
	// RejectedByRule counts rejections by rule id (a candidate failing two rules counts for both).
	RejectedByRule map[string]int `json:"rejected_by_rule,omitempty"`
}

// TrialRecord is one trial in the results file.
type TrialRecord struct {
	TrialNumber int            `json:"trial_number"`
	State       string         `json:"state"`
	Parameters  map[string]any `json:"parameters"`
	// Objectives are set for a COMPLETE trial that measured them.
	Objectives map[string]float64 `json:"objectives,omitempty"`
	// Feasible is true for a COMPLETE trial that met every SLO.
	Feasible bool `json:"feasible"`
	// ParetoOptimal is true for a front member.
	ParetoOptimal bool `json:"pareto_optimal"`
	// Violations lists the SLOs a COMPLETE trial missed (why it is infeasible).
	Violations []string           `json:"violations,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Units      map[string]string  `json:"units,omitempty"`
	// WorkloadMetrics holds each workload's metrics when the study tunes
	// for a mix; Metrics are then their aggregate.
	WorkloadMetrics map[string]map[string]float64 `json:"workload_metrics,omitempty"`
	// LoadPoints are the load levels measured (ladder or capacity search),
	// each a flat bench_serving-style object; WorkloadLoadPoints per
	// workload of a mix.
	LoadPoints         []events.LoadPoint            `json:"load_points,omitempty"`
	WorkloadLoadPoints map[string][]events.LoadPoint `json:"workload_load_points,omitempty"`
	// Reason says why a trial failed, was rejected or is infeasible.
	Reason       string      `json:"reason,omitempty"`
	FailureClass string      `json:"failure_class,omitempty"`
	Rules        []Rejection `json:"rules,omitempty"`
	DuplicateOf  *int        `json:"duplicate_of,omitempty"`
	// RepeatOf is set on a repeat run (sampler.repeats): the trial whose
	// configuration it measured again. Its result is folded into that
	// trial's front entry and is never a front member of its own.
	RepeatOf *int `json:"repeat_of,omitempty"`
	// LaunchCommand is the argv the server ran with.
	LaunchCommand []string `json:"launch_command,omitempty"`
	Runner        string   `json:"runner,omitempty"`
	Host          string   `json:"host,omitempty"`
	GPUModel      string   `json:"gpu_model,omitempty"`
	GPUs          []int    `json:"gpus,omitempty"`
	GPUSeconds    float64  `json:"gpu_seconds,omitempty"`
	Backend       string   `json:"backend,omitempty"`
	// What the server reported it ran: SGLang's version, the model it
	// loaded, the effective values of the tuned parameters, static flags and
	// values SGLang chose, and (sorted) those it changed from what was asked.
	SGLangVersion   string         `json:"sglang_version,omitempty"`
	ModelPathLoaded string         `json:"model_path_loaded,omitempty"`
	EffectiveParams map[string]any `json:"effective_params,omitempty"`
	AdjustedParams  []string       `json:"adjusted_params,omitempty"`
	StartedAt       time.Time      `json:"started_at,omitzero"`
	FinishedAt      time.Time      `json:"finished_at,omitzero"`
	LogRef          string         `json:"log_ref,omitempty"`
	LogTail         string         `json:"log_tail,omitempty"`
	// GPUUUIDs are the UUIDs of GPUs; DriverVersion and CUDAVersion what
	// NVML reported on the runner's host (empty for simulated GPUs).
	GPUUUIDs      []string `json:"gpu_uuids,omitempty"`
	DriverVersion string   `json:"driver_version,omitempty"`
	CUDAVersion   string   `json:"cuda_version,omitempty"`
}

// HVPoint is the hypervolume once trial TrialNumber (a benchmarked trial) and
// every earlier one are known.
type HVPoint struct {
	TrialNumber int     `json:"trial_number"`
	Benchmarked int     `json:"benchmarked"`
	Hypervolume float64 `json:"hypervolume"`
	FrontSize   int     `json:"front_size"`
}

// ResultsDoc is the results file: the front document plus every trial and the
// hypervolume history. Its fields are FrontDoc's, then trials and
// hypervolume_history.
type ResultsDoc struct {
	FrontDoc
	Trials             []TrialRecord `json:"trials"`
	HypervolumeHistory []HVPoint     `json:"hypervolume_history"`
}

// frontBody has FrontDoc's fields without its methods (no MarshalJSON recursion).
type frontBody FrontDoc

// MarshalJSON writes the document as compact, single-line, ASCII-only JSON.
func (d FrontDoc) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(frontBody(d))
	if err != nil {
		return nil, err
	}
	return ASCII(b), nil
}

// MarshalJSON writes the results as compact, ASCII-only JSON (FrontDoc's
// fields inline, then trials and hypervolume_history).
func (d ResultsDoc) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(struct {
		frontBody
		Trials             []TrialRecord `json:"trials"`
		HypervolumeHistory []HVPoint     `json:"hypervolume_history"`
	}{frontBody(d.FrontDoc), d.Trials, d.HypervolumeHistory})
	if err != nil {
		return nil, err
	}
	return ASCII(b), nil
}

// EncodeFront is the KV value of a front: compact, one line, ASCII only.
func EncodeFront(d FrontDoc) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode front of %s: %w", d.StudyName, err)
	}
	return b, nil
}

// DecodeFront reads a KV value written by EncodeFront (or any JSON of the same shape).
func DecodeFront(data []byte) (FrontDoc, error) {
	var d FrontDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return FrontDoc{}, fmt.Errorf("decode front: %w", err)
	}
	return d, nil
}

// SameFront reports whether two documents encode identically.
func SameFront(a, b FrontDoc) bool {
	x, err1 := EncodeFront(a)
	y, err2 := EncodeFront(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// ASCII rewrites JSON text so every byte is printable ASCII: runes above 0x7E
// (inside strings, the only place JSON has them) become \uXXXX escapes
// (surrogate pairs above U+FFFF). json.Marshal already escapes control
// characters and never emits newlines in compact output.
func ASCII(b []byte) []byte {
	clean := true
	for _, c := range b {
		if c >= 0x7F {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		c := b[0]
		if c < 0x7F {
			out = append(out, c)
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r >= 0x10000 {
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}
