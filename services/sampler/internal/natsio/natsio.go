// Package natsio is the sampler's NATS adapter: it reads the study's record
// (proposals and outcomes) from JetStream, publishes proposals, keeps the
// study's entry in the sgtune_studies bucket and reads the fleet's capacity.
// It maps wire events (pkg/events) to the sampling domain's types.
package natsio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// Bus is the sampler's view of NATS for one study.
type Bus struct {
	js     jetstream.JetStream
	study  string
	states jetstream.KeyValue
	log    zerolog.Logger
	epoch  string
	// feedRestarts counts the times a feed (outcomes, measurements) had to
	// follow its stream again (natsx.TailRestart).
	feedRestarts atomic.Int64
}

// FeedRestarts is how many times the study's feeds followed their streams
// again since the bus was opened (a metric).
func (b *Bus) FeedRestarts() int64 { return b.feedRestarts.Load() }

// feedOptions log a feed's restarts (with the feed's name) and count them.
func (b *Bus) feedOptions(feed string) []natsx.TailOption {
	return []natsx.TailOption{
		natsx.TailLogger(b.log.With().Str("feed", feed).Logger()),
		natsx.OnTailRestart(func(natsx.TailRestart) { b.feedRestarts.Add(1) }),
	}
}

// New opens the study's bucket. js must be provisioned (natsx.EnsureTopology).
func New(ctx context.Context, js jetstream.JetStream, study string, logger zerolog.Logger) (*Bus, error) {
	if js == nil {
		panic("natsio.New: nil JetStream")
	}
	if err := events.ValidateStudyName(study); err != nil {
		return nil, err
	}
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", events.BucketStudies, err)
	}
	return &Bus{js: js, study: study, states: kv, log: logger}, nil
}

// SetEpoch names this incarnation of the study (its start time), used to
// tell its message ids from those of a purged earlier incarnation.
func (b *Bus) SetEpoch(startedAt time.Time) {
	b.epoch = events.IncarnationOf(startedAt)
}

// Purge removes everything stored about the study (a fresh start).
func (b *Bus) Purge(ctx context.Context) error { return natsx.PurgeStudy(ctx, b.js, b.study) }

// Proposals replays every proposal of the study stored in the candidates
// stream. A message that does not decode is logged and skipped: it cannot
// be repaired, and its trial number is still reserved by any outcome that
// names it.
func (b *Bus) Proposals(ctx context.Context) ([]sampling.Proposal, error) {
	var out []sampling.Proposal
	err := natsx.Replay(ctx, b.js, events.StreamCandidates, events.CandidatesOfStudy(b.study), func(data []byte, meta natsx.Meta) error {
		p, err := DecodeProposal(data)
		if err != nil {
			b.log.Error().Err(err).Str("subject", meta.Subject).Uint64("stream_seq", meta.StreamSeq).Msg("skipping an undecodable proposal")
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay proposals: %w", err)
	}
	return out, nil
}

// TailOutcomes delivers every stored outcome of the study, calls onCaughtUp
// once the stored ones are delivered, then delivers new ones until ctx is
// done (it then returns nil). onOutcome runs on Tail's goroutine; an
// undecodable outcome is logged and skipped.
func (b *Bus) TailOutcomes(ctx context.Context, onOutcome func(sampling.Outcome), onCaughtUp func()) error {
	err := natsx.Tail(ctx, b.js, events.StreamOutcomes, events.OutcomesOfStudy(b.study), func(data []byte, meta natsx.Meta) error {
		o, err := DecodeOutcome(data)
		if err != nil {
			b.log.Error().Err(err).Str("subject", meta.Subject).Uint64("stream_seq", meta.StreamSeq).Msg("skipping an undecodable outcome")
			return nil
		}
		onOutcome(o)
		return nil
	}, onCaughtUp, b.feedOptions("outcomes")...)
	if err != nil {
		return fmt.Errorf("tail outcomes: %w", err)
	}
	return nil
}

// ErrProposalTaken is returned (wrapped) by PublishProposal when the trial
// number already holds another sampler's proposal: two samplers ran the
// study at once, and this one must stop (its ownership was lost).
var ErrProposalTaken = errors.New("trial number already proposed by another sampler")

// PublishProposal publishes p as CandidateProposed on its per-trial subject
// with the deterministic Nats-Msg-Id of (type, study, trial), so a retried
// publish is dropped by the server, and an expected last subject sequence
// of 0, so a trial number is proposed once whatever the number of samplers
// (ErrProposalTaken). It retries transient failures with a backoff until
// ctx is done.
func (b *Bus) PublishProposal(ctx context.Context, p sampling.Proposal, now time.Time) error {
	ev := events.CandidateProposed{
		Envelope: events.NewEnvelope(events.TypeCandidateProposed, b.study, p.Trial, now).In(b.epoch),
		Params:   p.Params,
		Sampler:  p.Sampler,
		RepeatOf: p.RepeatOf,
	}
	subject := events.CandidateSubject(b.study, p.Trial)
	for attempt := uint64(1); ; attempt++ {
		err := natsx.PublishOnce(ctx, b.js, subject, ev)
		if errors.Is(err, natsx.ErrAlreadyRecorded) {
			// Usually our own retry: the subject holds our proposal. But the
			// server also remembers ids of messages purged by a fresh start
			// (for the stream's duplicate window), and then the subject is
			// empty: publish again under an id unique to this incarnation of
			// the study (its start time), still deterministic for retries.
			data, found, lerr := natsx.LastOnSubject(ctx, b.js, events.StreamCandidates, subject)
			switch {
			case lerr != nil:
				err = lerr
			case !found && b.epoch != "" && !strings.HasSuffix(ev.ID, b.epoch):
				b.log.Info().Int("trial", p.Trial).Msg("proposal id remembered from before a purge; publishing under a new id")
				ev.ID += "@" + b.epoch
				continue
			case found:
				if head, perr := events.PeekEnvelope(data); perr == nil && head.ID == ev.ID {
					return nil // ours
				}
				return fmt.Errorf("%w: trial %d of %s", ErrProposalTaken, p.Trial, b.study)
			default:
				err = nil // a duplicate of a message gone for another reason: nothing to add
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := natsx.Backoff(attempt)
		b.log.Warn().Err(err).Int("trial", p.Trial).Dur("retry_in", d).Msg("publish proposal failed, retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// UpdateState applies fn to the study's StudyState with compare-and-swap.
func (b *Bus) UpdateState(ctx context.Context, fn func(st *events.StudyState, exists bool) error) (events.StudyState, error) {
	st, err := natsx.UpdateJSON(ctx, b.states, b.study, fn)
	if err != nil {
		return st, fmt.Errorf("update study state: %w", err)
	}
	return st, nil
}

// State reads the study's StudyState; exists is false when there is none.
func (b *Bus) State(ctx context.Context) (st events.StudyState, exists bool, err error) {
	st, _, err = natsx.GetJSON[events.StudyState](ctx, b.states, b.study)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.StudyState{}, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read study state: %w", err)
	}
	return st, true, nil
}

// FleetCapacity is the sum of the trial slots of the live runners (0 when
// none is alive).
func (b *Bus) FleetCapacity(ctx context.Context) (slots, runners int, err error) {
	rs, err := natsx.LiveRunners(ctx, b.js)
	if err != nil {
		return 0, 0, fmt.Errorf("read fleet: %w", err)
	}
	for _, r := range rs {
		slots += max(r.Slots, 0)
	}
	return slots, len(rs), nil
}

// DecodeProposal decodes a CandidateProposed.
func DecodeProposal(data []byte) (sampling.Proposal, error) {
	ev, err := events.Decode[events.CandidateProposed](data, events.TypeCandidateProposed)
	if err != nil {
		return sampling.Proposal{}, err
	}
	return sampling.Proposal{Trial: ev.Trial, Params: ev.Params, Sampler: ev.Sampler, RepeatOf: ev.RepeatOf}, nil
}

// DecodeOutcome decodes an outcome message, dispatching on its type: a
// CandidateRejected (a Duplicate when DuplicateOf is set) or a TrialResult
// (COMPLETE, FAILED; REJECTED is read as a rejection).
func DecodeOutcome(data []byte) (sampling.Outcome, error) {
	head, err := events.PeekEnvelope(data)
	if err != nil {
		return sampling.Outcome{}, err
	}
	switch head.Type {
	case events.TypeCandidateRejected:
		ev, err := events.Decode[events.CandidateRejected](data, events.TypeCandidateRejected)
		if err != nil {
			return sampling.Outcome{}, err
		}
		return OutcomeFromRejection(ev), nil
	case events.TypeTrialResult:
		ev, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
		if err != nil {
			return sampling.Outcome{}, err
		}
		return OutcomeFromResult(ev)
	default:
		return sampling.Outcome{}, fmt.Errorf("%w: %q on the outcomes stream", events.ErrUnknownType, head.Type)
	}
}

// OutcomeFromRejection maps a validator verdict.
func OutcomeFromRejection(ev events.CandidateRejected) sampling.Outcome {
	o := sampling.Outcome{Trial: ev.Trial, Kind: sampling.Rejected, Params: ev.Params}
	if ev.DuplicateOf != nil {
		o.Kind = sampling.Duplicate
	}
	for _, r := range ev.Rejections {
		o.Rules = append(o.Rules, r.Rule)
	}
	return o
}

// OutcomeFromResult maps a runner's result.
func OutcomeFromResult(ev events.TrialResult) (sampling.Outcome, error) {
	o := sampling.Outcome{Trial: ev.Trial, Params: ev.Params, Metrics: ev.Metrics, GPUSeconds: ev.GPUSeconds}
	switch ev.State {
	case events.StateComplete:
		o.Kind = sampling.Completed
	case events.StateFailed:
		o.Kind = sampling.Failed
		o.FailureClass = ev.FailureClass
		o.FailureCause = sampling.FailureCause(ev.LogTail, ev.Reason)
	case events.StatePruned:
		// Stopped early: its partial metrics are an observation.
		o.Kind = sampling.Pruned
	case events.StateRejected:
		o.Kind = sampling.Rejected
	default:
		return o, fmt.Errorf("%w: trial %d has result state %q", events.ErrMalformed, ev.Trial, ev.State)
	}
	return o, nil
}

// Record is a finished study's record as a warm start reads it: its
// stored state (with its spec) and every outcome, decoded from the wire.
type Record struct {
	State      events.StudyState
	Results    []events.TrialResult
	Rejections []events.CandidateRejected
}

// ReadRecord reads another study's record without changing it (replays
// and a KV get only). exists is false when the study has no state entry.
func ReadRecord(ctx context.Context, js jetstream.JetStream, study string) (rec Record, exists bool, err error) {
	if err := events.ValidateStudyName(study); err != nil {
		return rec, false, err
	}
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return rec, false, fmt.Errorf("open %s: %w", events.BucketStudies, err)
	}
	rec.State, _, err = natsx.GetJSON[events.StudyState](ctx, kv, study)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read the state of study %s: %w", study, err)
	}
	err = natsx.Replay(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy(study), func(data []byte, _ natsx.Meta) error {
		head, err := events.PeekEnvelope(data)
		if err != nil {
			return nil // undecodable: the study's own sampler skipped it too
		}
		switch head.Type {
		case events.TypeTrialResult:
			if ev, err := events.Decode[events.TrialResult](data, events.TypeTrialResult); err == nil {
				rec.Results = append(rec.Results, ev)
			}
		case events.TypeCandidateRejected:
			if ev, err := events.Decode[events.CandidateRejected](data, events.TypeCandidateRejected); err == nil {
				rec.Rejections = append(rec.Rejections, ev)
			}
		}
		return nil
	})
	if err != nil {
		return rec, true, fmt.Errorf("replay the outcomes of study %s: %w", study, err)
	}
	return rec, true, nil
}
