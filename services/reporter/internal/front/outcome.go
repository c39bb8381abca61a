package front

import (
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Trial states, as in the seed's JSON output and pkg/events.
const (
	StateComplete = "COMPLETE"
	StateFailed   = "FAILED"
	StateRejected = "REJECTED"
	// StatePruned: stopped early by the sampler (sampler.early_stop); its
	// metrics are what it measured before the stop. It counts as a
	// benchmarked trial and is never on the front.
	StatePruned = "PRUNED"
)

// Outcome is the one outcome of a trial: a result (COMPLETE or FAILED) from a
// runner or a rejection (REJECTED) from the validator. The adapter maps the
// wire events to it.
type Outcome struct {
	// Seq is the outcome's position in the outcomes stream (0 when unknown).
	// It orders a study's record; Fold ignores it.
	Seq   uint64
	Study string
	Trial int
	// State is StateComplete, StateFailed, StatePruned or StateRejected.
	State string
	// OccurredAt is when the producer created the event.
	OccurredAt time.Time
	// Params is the trial's configuration (nil values mean "None").
	Params map[string]any
	// Metrics and their Units (COMPLETE only).
	Metrics map[string]float64
	Units   map[string]string
	// WorkloadMetrics holds each workload's own metrics when the trial ran a
	// mix (spec workloads:); Metrics then aggregate them.
	WorkloadMetrics map[string]map[string]float64
	// LoadPoints are the load levels the trial measured (a ladder or a
	// capacity search); WorkloadLoadPoints those of each workload of a mix.
	LoadPoints         []events.LoadPoint
	WorkloadLoadPoints map[string][]events.LoadPoint
	// FailureClass (oom, crash, timeout, ...) and Reason of a FAILED trial;
	// Reason also carries a rejection's summary.
	FailureClass string
	Reason       string
	LogTail      string
	LogRef       string
	// Rejections lists the rules a REJECTED candidate failed.
	Rejections []Rejection
	// DuplicateOf is the earlier trial a duplicate candidate equals.
	DuplicateOf *int
	// Where it ran.
	LaunchCommand []string
	Runner        string
	Host          string
	GPUModel      string
	GPUs          []int
	// GPUSeconds is the GPU time the trial held (its GPUs times launch to stop).
	GPUSeconds float64
	// What the server reported it ran (events.TrialResult): SGLang's version,
	// the model it loaded, effective values and the ones it changed.
	SGLangVersion   string
	ModelPathLoaded string
	EffectiveParams map[string]any
	AdjustedParams  []string
	Backend         string
	StartedAt       time.Time
	FinishedAt      time.Time
	// GPUUUIDs, DriverVersion and CUDAVersion are what NVML reported.
	GPUUUIDs                   []string
	DriverVersion, CUDAVersion string
}

// Rejection is one validation rule a candidate failed.
type Rejection struct {
	Rule    string `json:"rule"`
	RuleSet string `json:"rule_set,omitempty"`
	Reason  string `json:"reason"`
}
