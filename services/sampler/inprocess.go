package sampler

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/natsio"
	"github.com/sgtune/sgtune/services/sampler/internal/pruning"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// InProcess is the sampler's study without NATS: the same domain Run
// drives (proposals, the record in goptuna's study, every outcome learned),
// told outcomes as the wire events Run reads them from (TrialResult,
// CandidateRejected). The sampler benchmark's offline harness
// (e2e/samplerbench) and tools use it; a study on the bus uses Run.
// It is not safe for concurrent use.
type InProcess struct{ st *sampling.Study }

// InProcessOptions adjust an in-process study beyond its spec.
type InProcessOptions struct {
	// Algorithm overrides the spec's (study.Algorithms); "" keeps it.
	Algorithm string
	// NTrials overrides the spec's n_trials (0 keeps it).
	NTrials int
	// Seed overrides the spec's sampler.seed when non-nil.
	Seed *int64
	// IgnoreInvalid hides rejected and failed trials from the algorithm, as
	// the seed tuner did (for the benchmark's "as the seed ran it" baseline).
	IgnoreInvalid bool
	// WarmStart are finished studies to learn from (spec sampler.warm_start
	// over the bus), read by the caller.
	WarmStart []WarmStartStudy
	// Logger receives goptuna's lines (zero value: discarded).
	Logger zerolog.Logger
}

// InProcessProposal is one proposed trial.
type InProcessProposal struct {
	Trial    int
	Params   events.Params
	Sampler  string
	RepeatOf *int
}

// InProcessCounters summarise an in-process study.
type InProcessCounters = sampling.Counters

// NewInProcess builds an empty study for spec (validated by the caller).
func NewInProcess(spec study.Spec, opts InProcessOptions) (*InProcess, error) {
	var prior *sampling.Prior
	if len(opts.WarmStart) > 0 {
		var err error
		if prior, err = newPrior(spec, opts.WarmStart); err != nil {
			return nil, err
		}
	}
	st, err := sampling.NewStudy(spec, sampling.Options{
		Algorithm: opts.Algorithm, NTrials: opts.NTrials, Seed: opts.Seed,
		IgnoreInvalid: opts.IgnoreInvalid, Logger: opts.Logger, Prior: prior,
	})
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	return &InProcess{st: st}, nil
}

// Algorithm is the algorithm that runs.
func (p *InProcess) Algorithm() string { return p.st.Algorithm() }

// Room is how many trials may be proposed with capacity trials in flight at most.
func (p *InProcess) Room(capacity int) int { return p.st.Room(capacity) }

// Done reports whether the study should stop proposing, and why.
func (p *InProcess) Done(now time.Time) (bool, string) { return p.st.Done(now) }

// Counters returns the study's counters.
func (p *InProcess) Counters() InProcessCounters { return p.st.Counters() }

// Propose proposes up to n trials (fewer when the space or the proposal
// limit runs out).
func (p *InProcess) Propose(n int) ([]InProcessProposal, error) {
	props, err := p.st.Propose(n)
	out := make([]InProcessProposal, len(props))
	for i, pr := range props {
		out[i] = InProcessProposal{Trial: pr.Trial, Params: pr.Params, Sampler: pr.Sampler, RepeatOf: pr.RepeatOf}
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("sampler: propose: %w", err)
	}
	return out, nil
}

// TellResult tells a runner's result, as Run reads it from the outcomes stream.
func (p *InProcess) TellResult(ev events.TrialResult) error {
	o, err := natsio.OutcomeFromResult(ev)
	if err != nil {
		return err
	}
	return p.st.Tell(o)
}

// TellRejection tells a validator's rejection (a duplicate when DuplicateOf is set).
func (p *InProcess) TellRejection(ev events.CandidateRejected) error {
	return p.st.Tell(natsio.OutcomeFromRejection(ev))
}

// FailureCause is the normalised decisive line the sampler learns a failed
// trial's cause from (its log tail, then the runner's reason): together with
// the failure class it is one constraint of the feasibility model.
func FailureCause(logTail, reason string) string { return sampling.FailureCause(logTail, reason) }

// Baseline is the configuration trial 0 runs: SGLang's defaults expressed
// in space.
func Baseline(space study.Space) (events.Params, error) { return sampling.Baseline(space) }

// ShouldStop judges a running trial's partial measurement as early
// stopping does over the bus (sampler.early_stop): whether to stop it now,
// and why (or why not).
func (p *InProcess) ShouldStop(trial int, m events.Measurement) (bool, string) {
	d := p.st.ShouldStop(trial, m, pruning.Policy{})
	return d.Stop, d.Reason
}
