// Package natsio is the validator's NATS adapter: it consumes candidates,
// loads each study's spec from KV, runs the rules, and publishes either the
// queued trial or the rejection.
//
// Consumes: stream SGTUNE_CANDIDATES through the durable "validator" (filter
// sgtune.candidates.>, explicit ack, AckWait 30 s, MaxDeliver 5).
// Reads: KV sgtune_studies/<study> (StudyState.Spec), KV sgtune_fleet (hardware rules).
// Produces: sgtune.trials.<study>.g<gpus>.<trial> (TrialQueued, Nats-Msg-Id),
// sgtune.outcomes.<study>.<trial> (CandidateRejected, expected last subject
// sequence 0), KV sgtune_canonical/<study>.<incarnation>.<hash> (dedup claims),
// sgtune.dlq.sgtune_candidates (DeadLetter, through natsx.Consume).
//
// Error -> Decision table (natsx.Consume acts on it):
//
//	payload does not decode, bad study name         -> Permanent: dead letter + TermWithReason
//	stored spec invalid                             -> Permanent: dead letter + TermWithReason
//	study not in KV yet                             -> RetryAfter(StudyRetry × 2^(delivered-1), ≤ 30 s)
//	hardware rule set on, no runner alive           -> wait in the handler (FleetWait, InProgress
//	                                                   keeps the message; no delivery is spent),
//	                                                   then RetryAfter(FleetRetry)
//	trial already queued or outcome already stored  -> nil (DoubleAck): a redelivery, nothing to do
//	rejection published or ErrAlreadyRecorded       -> nil (DoubleAck)
//	no live runner has the trial's GPU count        -> rejection fleet.fits_a_runner naming the fleet
//	trial published (a duplicate id is dropped)     -> nil (DoubleAck)
//	NATS errors (KV, publish)                       -> error: NakWithDelay(backoff), MaxDeliver backstop
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
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// Consumer settings of the durable "validator".
const (
	AckWait    = 30 * time.Second
	MaxDeliver = 5
	// InProgressEvery is how often the consume loop tells the server a
	// candidate is still being handled (a third of AckWait), so a candidate
	// waiting for the fleet is neither redelivered nor counted again.
	InProgressEvery = AckWait / 3
	// DefaultFleetWait is Options.FleetWait's default.
	DefaultFleetWait = 10 * time.Minute
)

// ConsumerConfig is the durable pull consumer on SGTUNE_CANDIDATES.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       events.DurableValidator,
		Description:   "validator: every candidate becomes a queued trial or a rejection",
		FilterSubject: events.SubjectCandidatesAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    MaxDeliver,
	}
}

// Options configure a Validator.
type Options struct {
	// DeviceNum overrides every spec's device_num when > 0.
	DeviceNum int
	// StudyRetry is the redelivery delay when a candidate's study is not in KV yet.
	StudyRetry time.Duration
	// FleetWait is how long one delivery of a candidate whose study uses the
	// hardware rules waits in the handler for the first live runner (10 min).
	// The consume loop must send InProgress meanwhile (natsx.ConsumeOptions.InProgressEvery
	// < AckWait), so waiting spends no delivery.
	FleetWait time.Duration
	// FleetPoll is how often a waiting candidate re-reads the fleet (1 s).
	FleetPoll time.Duration
	// FleetRetry is the redelivery delay after FleetWait passed with no runner (30 s).
	FleetRetry time.Duration
	// Now is the clock for event times.
	Now func() time.Time
	// Logger gets one line per verdict.
	Logger zerolog.Logger
}

// Validator handles candidates. It is safe for concurrent use by several workers.
type Validator struct {
	js      jetstream.JetStream
	studies *Studies
	fleet   *Fleet
	claims  Claims
	opts    Options
}

// NewValidator wires the handler; every collaborator is required.
func NewValidator(js jetstream.JetStream, studies *Studies, fleet *Fleet, claims Claims, opts Options) *Validator {
	if js == nil || studies == nil || fleet == nil || claims == nil {
		panic("natsio: NewValidator needs jetstream, studies, fleet and claims")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StudyRetry <= 0 {
		opts.StudyRetry = 2 * time.Second
	}
	if opts.FleetWait <= 0 {
		opts.FleetWait = DefaultFleetWait
	}
	if opts.FleetPoll <= 0 {
		opts.FleetPoll = time.Second
	}
	if opts.FleetRetry <= 0 {
		opts.FleetRetry = 30 * time.Second
	}
	return &Validator{js: js, studies: studies, fleet: fleet, claims: claims, opts: opts}
}

// Handler is the typed consume handler for natsx.Consume.
func (v *Validator) Handler() natsx.Handler {
	return natsx.Typed(events.TypeCandidateProposed, v.HandleCandidate)
}

// HandleCandidate turns one candidate into a queued trial or a rejection. It
// is idempotent: a redelivered candidate whose trial or outcome is already
// stored is acked without publishing again.
func (v *Validator) HandleCandidate(ctx context.Context, ev events.CandidateProposed, meta natsx.Meta) error {
	name, trial := ev.Study, ev.Trial
	if err := events.ValidateStudyName(name); err != nil {
		return natsx.Permanent(fmt.Errorf("%w: %w", ErrBadCandidate, err))
	}
	log := v.opts.Logger.With().Str("study", name).Int("trial", trial).Logger()

	// A redelivery after the outcome was stored: nothing left to do.
	if _, found, err := natsx.LastOnSubject(ctx, v.js, events.StreamOutcomes, events.OutcomeSubject(name, trial)); err != nil {
		return err
	} else if found {
		log.Debug().Msg("outcome already recorded; redelivery acked")
		return nil
	}

	st, err := v.studies.Load(ctx, name)
	switch {
	case errors.Is(err, ErrStudyNotFound):
		// Back off StudyRetry, 2×, 4×, ... (capped at AckWait) before MaxDeliver gives up.
		return natsx.RetryAfter(err, min(v.opts.StudyRetry<<min(max(meta.Delivered, 1)-1, 8), AckWait))
	case errors.Is(err, ErrBadSpec):
		return natsx.Permanent(err)
	case err != nil:
		return err
	}
	spec := st.Spec

	var fleet []rules.Host
	if rules.UsesFleet(spec.Rules) {
		// With no runner alive the hardware rules cannot judge: wait here (the
		// consume loop's InProgress keeps the delivery alive, so no delivery is
		// spent), and only after FleetWait hand the candidate back for later.
		// A fleet that cannot be read but was seen before keeps its last hosts.
		fleet, err = v.fleet.Wait(ctx, v.opts.FleetWait, v.opts.FleetPoll)
		switch {
		case errors.Is(err, ErrNoLiveRunner):
			log.Warn().Err(err).Dur("waited", v.opts.FleetWait).Msg("no live runner to judge the hardware rules; retrying later")
			return natsx.RetryAfter(err, v.opts.FleetRetry)
		case err != nil:
			return err // ctx done: the loop naks it for another validator
		}
	}
	if !rules.UsesFleet(spec.Rules) {
		fleet, _ = v.fleet.Hosts(ctx) // the last known fleet when it cannot be read
	}
	in, gpus, rejections := judge(spec, ev, v.opts.DeviceNum, fleet)
	if dependsOnFleet(rejections) {
		// The fleet was read up to a refresh ago: a runner that joined since
		// may fit the trial. Rejected only against the fleet as it is now.
		if fresh, err := v.fleet.Fresh(ctx); err == nil && len(fresh) > 0 {
			in, gpus, rejections = judge(spec, ev, v.opts.DeviceNum, fresh)
		}
	}
	hash := rules.CanonicalHash(in)
	if len(rejections) > 0 {
		return v.reject(ctx, log, ev, rejections, nil, hash)
	}
	trialSubject := events.TrialSubject(name, gpus, trial)
	// Queued earlier (the ack was lost)? The trial subject is checked before
	// the outcome again: a runner publishes the outcome before it acks the
	// trial away, so "not queued, no outcome" means it never was queued.
	if _, found, err := natsx.LastOnSubject(ctx, v.js, events.StreamTrials, trialSubject); err != nil {
		return err
	} else if found {
		log.Debug().Msg("trial already queued; redelivery acked")
		return nil
	}
	if _, found, err := natsx.LastOnSubject(ctx, v.js, events.StreamOutcomes, events.OutcomeSubject(name, trial)); err != nil {
		return err
	} else if found {
		return nil
	}

	// Repeats of a front member run the same config on purpose.
	if ev.RepeatOf == nil {
		owner, err := v.claims.Claim(ctx, name, st.Incarnation, hash, trial)
		if err != nil {
			return err
		}
		if owner != trial {
			return v.reject(ctx, log, ev, []events.Rejection{rules.DuplicateRejection(owner, hash)}, &owner, hash)
		}
	}

	args, err := spec.LaunchArgs(in.Params)
	if err != nil {
		// The safety rules make this unreachable; reject rather than queue a broken launch.
		return v.reject(ctx, log, ev, []events.Rejection{{
			Rule: "safety.launch_args", RuleSet: rules.SetSafety, Reason: "the launch command cannot be built: " + err.Error() + ".",
			Source: "pkg/study LaunchArgs",
		}}, nil, hash)
	}
	q := events.TrialQueued{
		Envelope:      events.NewEnvelope(events.TypeTrialQueued, name, trial, v.opts.Now()).In(ev.Incarnation),
		Params:        in.Params,
		GPUs:          gpus,
		ServerArgs:    args,
		Workload:      spec.Workload,
		Workloads:     spec.Workloads,
		MixAggregates: spec.MixAggregates(),
		Timeouts:      spec.Timeouts(in.Params),
		CanonicalHash: hash,
	}
	if _, err := natsx.Publish(ctx, v.js, trialSubject, q); err != nil {
		return err
	}
	log.Info().Int("gpus", gpus).Str("canonical_hash", hash).Msg("trial queued")
	return nil
}

// reject publishes the candidate's one outcome, a CandidateRejected.
func (v *Validator) reject(ctx context.Context, log zerolog.Logger, ev events.CandidateProposed, rejections []events.Rejection, duplicateOf *int, hash string) error {
	out := events.CandidateRejected{
		Envelope:      events.NewEnvelope(events.TypeCandidateRejected, ev.Study, ev.Trial, v.opts.Now()).In(ev.Incarnation),
		Params:        ev.Params,
		Rejections:    rejections,
		DuplicateOf:   duplicateOf,
		CanonicalHash: hash,
	}
	err := natsx.PublishOnce(ctx, v.js, events.OutcomeSubject(ev.Study, ev.Trial), out)
	if errors.Is(err, natsx.ErrAlreadyRecorded) {
		log.Debug().Msg("outcome already recorded; redelivery acked")
		return nil
	}
	if err != nil {
		return err
	}
	ids := make([]string, len(rejections))
	for i, r := range rejections {
		ids[i] = r.Rule
	}
	log.Info().Strs("rules", ids).Msg("candidate rejected")
	return nil
}

// judge evaluates the candidate's rules against fleet and, whatever the
// rule sets, that a live runner can fit it (a trial none can fit would wait
// in its class's queue forever). It returns the rules' input, the GPUs the
// trial needs and the rejections (none: the trial may be queued).
func judge(spec *study.Spec, ev events.CandidateProposed, deviceNum int, fleet []rules.Host) (rules.Input, int, []events.Rejection) {
	in := rules.NewInput(spec, ev.Params, deviceNum, fleet)
	in.Baseline = ev.Sampler == "baseline"
	if rejections := rules.Evaluate(spec, in); len(rejections) > 0 {
		return in, 0, rejections
	}
	gpus := study.GPUsNeeded(in.Params, spec.Model.StaticArgs)
	if rej, ok := rules.FleetFit(gpus, fleet); !ok {
		return in, gpus, []events.Rejection{rej}
	}
	return in, gpus, nil
}

// dependsOnFleet reports whether a rejection judged the live fleet.
func dependsOnFleet(rejections []events.Rejection) bool {
	for _, r := range rejections {
		if r.RuleSet == rules.SetHardware || r.RuleSet == rules.SetFleet {
			return true
		}
	}
	return false
}
