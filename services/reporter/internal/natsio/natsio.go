// Package natsio is the reporter's NATS adapter: the outcomes consumer, the
// decoding of outcome events into the domain's Outcome, the error -> ack
// decision table, and the KV-backed implementations of the app's ports
// (studies, outcome history, front store). It is the only internal package
// that imports NATS.
package natsio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Consumer settings of the reporter's durable on SGTUNE_OUTCOMES.
const (
	// AckWait bounds one outcome's handling (a KV read, a replay at most, two KV writes).
	AckWait = 30 * time.Second
	// MaxDeliver is how often an outcome is tried before it is dead-lettered.
	MaxDeliver = 5
)

// ConsumerConfig is the reporter's durable pull consumer: every outcome of
// every study, explicit ack.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       events.DurableReporter,
		Description:   "reporter: folds outcomes into the Pareto fronts",
		FilterSubject: events.SubjectOutcomesAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    MaxDeliver,
		MaxAckPending: 64,
	}
}

// EnsureConsumer creates or updates the reporter's durable consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	return natsx.EnsureConsumer(ctx, js, events.StreamOutcomes, ConsumerConfig())
}

// DecodeOutcome decodes an outcome event (events.TypeTrialResult or
// events.TypeCandidateRejected). Errors wrap events.ErrMalformed or
// events.ErrUnknownType.
func DecodeOutcome(data []byte) (front.Outcome, error) {
	env, err := events.PeekEnvelope(data)
	if err != nil {
		return front.Outcome{}, err
	}
	switch env.Type {
	case events.TypeTrialResult:
		ev, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
		if err != nil {
			return front.Outcome{}, err
		}
		if ev.State != events.StateComplete && ev.State != events.StateFailed && ev.State != events.StatePruned {
			return front.Outcome{}, fmt.Errorf("%w: result of trial %d has state %q", events.ErrMalformed, ev.Trial, ev.State)
		}
		return FromResult(ev), nil
	case events.TypeCandidateRejected:
		ev, err := events.Decode[events.CandidateRejected](data, events.TypeCandidateRejected)
		if err != nil {
			return front.Outcome{}, err
		}
		return FromRejection(ev), nil
	}
	return front.Outcome{}, fmt.Errorf("%w: %q on the outcomes stream", events.ErrUnknownType, env.Type)
}

// FromResult maps a runner's result to the domain.
func FromResult(ev events.TrialResult) front.Outcome {
	return front.Outcome{
		Study: ev.Study, Trial: ev.Trial, State: ev.State, OccurredAt: ev.OccurredAt,
		Params: ev.Params, Metrics: ev.Metrics, Units: ev.Units, WorkloadMetrics: ev.WorkloadMetrics,
		LoadPoints: ev.LoadPoints, WorkloadLoadPoints: ev.WorkloadLoadPoints,
		FailureClass: ev.FailureClass, Reason: ev.Reason, LogTail: ev.LogTail, LogRef: ev.LogRef,
		LaunchCommand: ev.LaunchCommand, Runner: ev.Runner, Host: ev.Host, GPUModel: ev.GPUModel,
		GPUs: ev.GPUs, GPUSeconds: ev.GPUSeconds, Backend: ev.Backend, StartedAt: ev.StartedAt, FinishedAt: ev.FinishedAt,
		SGLangVersion: ev.SGLangVersion, ModelPathLoaded: ev.ModelPathLoaded, EffectiveParams: ev.EffectiveParams,
		AdjustedParams: ev.AdjustedParams, GPUUUIDs: ev.GPUUUIDs, DriverVersion: ev.DriverVersion, CUDAVersion: ev.CUDAVersion,
	}
}

// FromRejection maps a validator's rejection to the domain.
func FromRejection(ev events.CandidateRejected) front.Outcome {
	o := front.Outcome{
		Study: ev.Study, Trial: ev.Trial, State: front.StateRejected, OccurredAt: ev.OccurredAt,
		Params: ev.Params, DuplicateOf: ev.DuplicateOf,
	}
	for _, r := range ev.Rejections {
		o.Rejections = append(o.Rejections, front.Rejection{Rule: r.Rule, RuleSet: r.RuleSet, Reason: r.Reason})
	}
	return o
}

// OutcomeHandler is the use case the consumer feeds.
type OutcomeHandler interface {
	HandleOutcome(ctx context.Context, o front.Outcome) error
}

// Handler turns outcome messages into use-case calls and the use case's
// errors into ack decisions.
type Handler struct {
	svc OutcomeHandler
}

// NewHandler returns the consumer's handler.
func NewHandler(svc OutcomeHandler) *Handler {
	if svc == nil {
		panic("natsio.NewHandler: nil service")
	}
	return &Handler{svc: svc}
}

// Handle is a natsx.Handler. Decision table:
//
//	undecodable, unknown type, subject/envelope mismatch -> Permanent (dead letter, Term)
//	stored spec invalid, outcome with a bad state        -> Permanent
//	study not in sgtune_studies yet                      -> retry after a delay
//	KV or replay failure                                 -> transient (NakWithDelay, backoff)
//	folded and both KV keys written                      -> nil (ack)
func (h *Handler) Handle(ctx context.Context, data []byte, meta natsx.Meta) error {
	o, err := DecodeOutcome(data)
	if err != nil {
		return natsx.Permanent(err)
	}
	o.Seq = meta.StreamSeq
	if meta.Subject != "" && meta.Subject != events.OutcomeSubject(o.Study, o.Trial) {
		return natsx.Permanent(fmt.Errorf("%w: outcome of %s trial %d on subject %s", events.ErrMalformed, o.Study, o.Trial, meta.Subject))
	}
	err = h.svc.HandleOutcome(ctx, o)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrBadSpec), errors.Is(err, front.ErrBadOutcome):
		return natsx.Permanent(err)
	case errors.Is(err, app.ErrStudyNotFound):
		// The sampler writes the study before proposing; give it time.
		return natsx.RetryAfter(err, 2*natsx.Backoff(max(meta.Delivered, 1)))
	}
	return err
}

// Studies reads study entries from the sgtune_studies bucket.
type Studies struct {
	js jetstream.JetStream
}

var _ app.Studies = (*Studies)(nil)

// NewStudies returns the studies port.
func NewStudies(js jetstream.JetStream) *Studies { return &Studies{js: js} }

// Study implements app.Studies.
func (s *Studies) Study(ctx context.Context, name string) (app.StudyInfo, error) {
	st, err := ReadStudyState(ctx, s.js, name)
	if err != nil {
		return app.StudyInfo{}, err
	}
	spec, err := study.FromJSON(st.Spec)
	if err != nil {
		return app.StudyInfo{}, fmt.Errorf("%w: %s: %w", app.ErrBadSpec, name, err)
	}
	return app.StudyInfo{Spec: spec, StartedAt: st.StartedAt}, nil
}

// ReadStudyState reads a study's entry; a missing one wraps app.ErrStudyNotFound.
func ReadStudyState(ctx context.Context, js jetstream.JetStream, name string) (events.StudyState, error) {
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return events.StudyState{}, err
	}
	st, _, err := natsx.GetJSON[events.StudyState](ctx, kv, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.StudyState{}, fmt.Errorf("%w: %s", app.ErrStudyNotFound, name)
	}
	if err != nil {
		return events.StudyState{}, err
	}
	return st, nil
}

// History replays a study's outcomes from SGTUNE_OUTCOMES.
type History struct {
	js     jetstream.JetStream
	logger zerolog.Logger
}

var _ app.History = (*History)(nil)

// NewHistory returns the history port.
func NewHistory(js jetstream.JetStream, logger zerolog.Logger) *History {
	return &History{js: js, logger: logger}
}

// Replay implements app.History; undecodable messages are logged and skipped
// (the live consumer dead-letters them).
func (h *History) Replay(ctx context.Context, name string, fn func(front.Outcome) error) error {
	return natsx.Replay(ctx, h.js, events.StreamOutcomes, events.OutcomesOfStudy(name), func(data []byte, meta natsx.Meta) error {
		o, err := DecodeOutcome(data)
		if err != nil {
			h.logger.Debug().Err(err).Str("study", name).Str("subject", meta.Subject).Uint64("stream_seq", meta.StreamSeq).
				Msg("undecodable outcome skipped during replay")
			return nil
		}
		o.Seq = meta.StreamSeq
		return fn(o)
	})
}

// Between implements app.History with direct gets of the next message on
// the study's outcome subjects: one round trip per outcome, and one for a
// reporter that already has everything (the get then returns the message at
// before, or nothing).
func (h *History) Between(ctx context.Context, name string, after, before uint64, fn func(front.Outcome) error) error {
	s, err := h.js.Stream(ctx, events.StreamOutcomes)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", events.StreamOutcomes, err)
	}
	filter := events.OutcomesOfStudy(name)
	for seq := after + 1; seq < before; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read outcome of %s after %d: %w", name, seq-1, err)
		}
		if m.Sequence >= before {
			return nil
		}
		seq = m.Sequence + 1
		o, err := DecodeOutcome(m.Data)
		if err != nil {
			h.logger.Debug().Err(err).Str("study", name).Str("subject", m.Subject).Uint64("stream_seq", m.Sequence).
				Msg("undecodable outcome skipped during catch-up")
			continue
		}
		o.Seq = m.Sequence
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// FrontStore keeps front documents in the pareto bucket, as compact one-line
// ASCII JSON, updated with compare-and-swap.
type FrontStore struct {
	kv jetstream.KeyValue
}

var _ app.FrontStore = (*FrontStore)(nil)

// NewFrontStore returns the KV front store over the pareto bucket kv.
func NewFrontStore(kv jetstream.KeyValue) *FrontStore {
	if kv == nil {
		panic("natsio.NewFrontStore: nil bucket")
	}
	return &FrontStore{kv: kv}
}

// OpenFrontStore opens the pareto bucket (EnsureTopology must have run).
func OpenFrontStore(ctx context.Context, js jetstream.JetStream) (*FrontStore, error) {
	kv, err := natsx.KV(ctx, js, events.BucketPareto)
	if err != nil {
		return nil, err
	}
	return NewFrontStore(kv), nil
}

// Update implements app.FrontStore with natsx.UpdateRaw: read the entry and
// its revision, apply fn, write with Update(rev) (Create when absent) and
// start over on a revision conflict. A stored value that does not decode is
// treated as absent, so the reporter repairs it.
func (s *FrontStore) Update(ctx context.Context, key string, fn func(*front.FrontDoc) error) error {
	return natsx.UpdateRaw(ctx, s.kv, key, func(cur []byte) ([]byte, error) {
		var doc front.FrontDoc
		if cur != nil {
			if d, err := front.DecodeFront(cur); err == nil {
				doc = d
			}
		}
		if err := fn(&doc); err != nil {
			if errors.Is(err, app.ErrNoChange) {
				return nil, natsx.ErrNoChange
			}
			return nil, err
		}
		return front.EncodeFront(doc)
	})
}

// ReadFront reads the front stored at key; a missing key wraps jetstream.ErrKeyNotFound.
func ReadFront(ctx context.Context, js jetstream.JetStream, key string) (front.FrontDoc, error) {
	kv, err := natsx.KV(ctx, js, events.BucketPareto)
	if err != nil {
		return front.FrontDoc{}, err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return front.FrontDoc{}, fmt.Errorf("read %s/%s: %w", events.BucketPareto, key, err)
	}
	return front.DecodeFront(e.Value())
}
