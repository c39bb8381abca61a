package sampling

import (
	"fmt"

	"github.com/sgtune/sgtune/pkg/events"
)

// Kind is what became of a proposed trial.
type Kind int

// Outcome kinds.
const (
	// Completed: the trial ran and measured its metrics.
	Completed Kind = iota + 1
	// Failed: the server or benchmark failed (oom, crash, timeout, ...): a
	// result about the config, which is infeasible.
	Failed
	// Rejected: the validator refused the config (Rules name the rules).
	Rejected
	// Duplicate: the validator found the config's canonical form already ran.
	Duplicate
	// Pruned: the trial was stopped early (early stopping); Metrics are the
	// partial measurements it had. It used a runner, so it counts as
	// benchmarked, and it is never on the front.
	Pruned
)

func (k Kind) String() string {
	switch k {
	case Completed:
		return "completed"
	case Failed:
		return "failed"
	case Rejected:
		return "rejected"
	case Duplicate:
		return "duplicate"
	case Pruned:
		return "pruned"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Proposal is one proposed trial.
type Proposal struct {
	// Trial is the trial number the study minted.
	Trial int
	// Params is the configuration, typed as the spec's values.
	Params events.Params
	// Sampler names what produced it: an algorithm ("gp-ehvi", "motpe",
	// ...), "baseline", "random" (a fallback or startup draw), "repeat".
	Sampler string
	// RepeatOf, when set, marks a repeat run of that earlier trial (same
	// params, spec.Sampler.Repeats): its result is folded into the earlier
	// trial's, and the validator lets the duplicate through.
	RepeatOf *int
}

// Outcome is what became of a trial.
type Outcome struct {
	Trial int
	Kind  Kind
	// Metrics of a completed trial (result metric name -> value); the
	// partial metrics of a pruned one.
	Metrics map[string]float64
	// FailureClass of a failed trial (events.Fail*).
	FailureClass string
	// FailureCause tells failures of one class apart: the decisive line of
	// the server's or benchmark command's output, normalised (see
	// FailureCause), "" when unknown. Each (class, cause) is a constraint
	// of its own in the feasibility model.
	FailureCause string
	// Rules names the validation rules a rejected trial failed.
	Rules []string
	// Params, when set, lets the study adopt an outcome of a trial it has no
	// proposal for (a record lost from the candidates stream).
	Params events.Params
	// GPUSeconds is the GPU time the trial held (the study's gpu_hours budget).
	GPUSeconds float64
}

// Counters summarise a study.
type Counters struct {
	// Proposed counts trial numbers used.
	Proposed int
	// InFlight counts proposals without an outcome.
	InFlight int
	// Completed, Failed and Pruned count results; together they are the
	// benchmarked trials.
	Completed int
	Failed    int
	Pruned    int
	// Rejected counts validator rejections, duplicates included; Duplicates only those.
	Rejected   int
	Duplicates int
	// Infeasible counts completed trials that missed an SLO.
	Infeasible int
	// KnownCause counts failed trials whose (class, cause) had failed
	// before: launches the feasibility model could have saved.
	KnownCause int
	// GPUSeconds is the GPU time the benchmarked trials held.
	GPUSeconds float64
}

// Benchmarked is the number of trials that ran: completed, failed and
// pruned. Only these use up the n_trials budget.
func (c Counters) Benchmarked() int { return c.Completed + c.Failed + c.Pruned }

// status of a trial record.
type status int

const (
	statusPending status = iota
	statusCompleted
	statusFailed
	statusRejected
	statusDuplicate
	statusPruned
)

// finished reports whether the trial has an outcome.
func (s status) finished() bool { return s != statusPending }

// benchmarked reports whether the trial used a runner.
func (s status) benchmarked() bool {
	return s == statusCompleted || s == statusFailed || s == statusPruned
}

// trial is an algorithm's view of one trial, decoded from its goptuna
// record (history.decode); only history writes it.
type trial struct {
	number  int
	gid     int   // goptuna trial ID
	x       []int // index vector; nil when the params do not fit the space
	key     string
	sampler string
	status  status
	// y are the objective values in minimisation form (maximised ones
	// negated); nil unless completed with every objective measured. For
	// an original with repeat runs, the mean over its runs.
	y []float64
	// feasible: completed, every objective measured, no SLO missed (and
	// every repeat run too).
	feasible bool
	// violation orders infeasible trials for NSGA-II (0 when feasible).
	violation float64
	// benchSeq is the order of the outcome among benchmarked trials (-1 otherwise).
	benchSeq int
	// rules a rejection named; failClass and failCause of a failure.
	rules     []string
	failClass string
	failCause string
	// partial are the minimisation-form objectives a pruned trial had
	// measured when it was stopped (nil otherwise).
	partial []float64
	// Repeats (spec.Sampler.Repeats): repeatOf links a repeat run to its
	// original; an original lists its repeat runs and keeps its own
	// measurement in ownY/ownFeasible, while y and feasible hold the
	// aggregate over every finished run.
	repeatOf    *trial
	repeats     []*trial
	ownY        []float64
	ownFeasible bool
}
