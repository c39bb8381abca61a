// Package sampler is sgtune's sampler service: it owns a study, numbers its
// trials, proposes configurations (gp-ehvi by default; study.Algorithms) and
// learns from every outcome, keeping no more trials in flight than the
// fleet can run.
//
// Consumes (no durable consumer: ordered replays, so its state is rebuilt
// from the streams on every start):
//
//	SGTUNE_CANDIDATES  sgtune.candidates.<study>.*   its own earlier proposals (replayed once at start)
//	SGTUNE_OUTCOMES    sgtune.outcomes.<study>.*     CandidateRejected and TrialResult (replayed, then followed)
//	KV sgtune_fleet                                   live runners' Slots (capacity, when MaxInFlight is 0)
//	SGTUNE_OUTCOMES, KV sgtune_studies                the record of each spec sampler.warm_start study (read only)
//
// Produces:
//
//	SGTUNE_CANDIDATES  sgtune.candidates.<study>.<trial>  CandidateProposed, Nats-Msg-Id "candidate.proposed:<study>:<trial>"
//	                                                      (repeat_of set on a repeat run of a front member, spec sampler.repeats)
//	KV sgtune_studies  key <study>                        StudyState: spec, status, counters, stop reason
//
// Run returns nil when the study is complete (n_trials benchmarked, time
// budget, hypervolume plateau, space exhausted or proposal limit, and
// nothing in flight) or when ctx is cancelled. The sampler is a singleton
// per study.
package sampler

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
	"github.com/sgtune/sgtune/services/sampler/internal/natsio"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
	"golang.org/x/sync/errgroup"
)

// Run runs the study described by cfg until it is complete or ctx is done.
func Run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sampler config: %w", err)
	}
	spec := effectiveSpec(cfg)
	log := logger.With().Str("service", "sampler").Str("study", spec.StudyName).Logger()

	nc, js, err := natsx.Connect(ctx, cfg.NATS, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sampler: connect: %w", err)
	}
	defer natsx.Drain(nc, 5*time.Second, log)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: cfg.Replicas}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sampler: provision: %w", err)
	}
	bus, err := natsio.New(ctx, js, spec.StudyName, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sampler: %w", err)
	}
	// One sampler per study: own it (standing by while another owns it),
	// then check a resume against the stored spec.
	if cfg.Fresh {
		stored, err := Inspect(ctx, js, spec)
		if err != nil {
			return fmt.Errorf("sampler: %w", err)
		}
		if err := stored.Check(true, false); err != nil {
			return fmt.Errorf("sampler: %w", err)
		}
	}
	own, octx, err := bus.Own(ctx, natsio.OwnOptions{Logger: log, OnStandby: cfg.OnStandby})
	switch {
	case errors.Is(err, natsio.ErrCompletedElsewhere):
		log.Info().Msg("the study was completed by its owner")
		return nil
	case err != nil:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sampler: own the study: %w", err)
	}
	defer own.Release()
	stored, err := Inspect(octx, js, spec)
	if err != nil {
		return fmt.Errorf("sampler: %w", err)
	}
	stored.Owner = nil // this sampler, now
	if err := stored.Check(cfg.Fresh, cfg.AllowSpecChange); err != nil {
		return fmt.Errorf("sampler: %w", err)
	}
	if len(stored.Changes) > 0 && !cfg.Fresh {
		log.Info().Str("changes", study.DescribeChanges(stored.Changes)).Msg("resuming with a changed spec")
	}
	if cfg.Fresh {
		if err := bus.Purge(octx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sampler: fresh start: %w", err)
		}
		p, b, r := stored.Trials()
		log.Info().Int("proposed", p).Int("benchmarked", b).Int("rejected", r).Msg("purged the study's stored state (fresh start)")
	}
	var m *metrics
	if cfg.Metrics != nil {
		m = newMetrics(cfg.Metrics, spec.StudyName, bus.FeedRestarts)
	}
	err = (&loop{cfg: cfg, spec: spec, bus: bus, js: js, log: log, metrics: m}).run(octx)
	if cause := context.Cause(octx); errors.Is(cause, natsio.ErrOwnershipLost) && ctx.Err() == nil {
		return fmt.Errorf("sampler: %w", cause)
	}
	if errors.Is(err, natsio.ErrProposalTaken) {
		return fmt.Errorf("sampler: %w: %w", natsio.ErrOwnershipLost, err)
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}

// effectiveSpec applies the config's overrides to the spec, so the spec
// stored in the study's KV entry is the one really run.
func effectiveSpec(cfg Config) study.Spec {
	s := cfg.Spec
	if cfg.NTrials > 0 {
		s.NTrials = cfg.NTrials
	}
	if cfg.Algorithm != "" {
		s.Sampler.Algorithm, s.Sampler.Acquisition = cfg.Algorithm, ""
	}
	if cfg.Seed != nil {
		s.Sampler.Seed = *cfg.Seed
	}
	return s
}

// loop is one run of the study: restore, then propose and tell until done.
type loop struct {
	cfg       Config
	spec      study.Spec
	bus       *natsio.Bus
	js        jetstream.JetStream
	log       zerolog.Logger
	st        *sampling.Study
	specJSON  []byte
	startedAt time.Time
	capacity  int
	runners   int
	synced    sampling.Counters // counters last written to the study's KV entry
	wrote     bool
	metrics   *metrics // nil: no metrics
	// stopAsked are the trials early stopping asked to stop (sampler.early_stop).
	stopAsked map[int]bool
}

func (l *loop) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	outs := make(chan sampling.Outcome, 256)
	caught := make(chan struct{})
	g.Go(func() error {
		return l.bus.TailOutcomes(gctx, func(o sampling.Outcome) {
			select {
			case outs <- o:
			case <-gctx.Done():
			}
		}, func() { close(caught) })
	})
	var meas chan measured // nil (never ready) without early stopping
	if l.spec.Sampler.EarlyStop {
		meas = make(chan measured, 256)
		g.Go(func() error { return l.tailMeasurements(gctx, meas) })
	}
	g.Go(func() error {
		// The study's end ends the tail too.
		defer cancel()
		return l.main(gctx, outs, caught, meas)
	})
	return g.Wait()
}

func (l *loop) main(ctx context.Context, outs <-chan sampling.Outcome, caught <-chan struct{}, meas <-chan measured) error {
	if err := l.restore(ctx, outs, caught); err != nil {
		return err
	}
	tick := time.NewTicker(l.cfg.FleetPoll)
	defer tick.Stop()
	l.refreshCapacity(ctx)
	for {
		now := time.Now()
		done, reason := l.st.Done(now)
		if done && l.st.Counters().InFlight == 0 {
			return l.complete(ctx, reason)
		}
		if !done {
			if err := l.propose(ctx, now); err != nil {
				return err
			}
		}
		l.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case o := <-outs:
			l.tell(o)
			// Take whatever else has arrived before proposing again.
			for more := true; more; {
				select {
				case o := <-outs:
					l.tell(o)
				default:
					more = false
				}
			}
		case mm := <-meas:
			l.judge(ctx, mm)
		case <-tick.C:
			l.refreshCapacity(ctx)
		}
	}
}

// restore rebuilds the study from the streams: every stored proposal, and
// every outcome stored when the tail started.
func (l *loop) restore(ctx context.Context, outs <-chan sampling.Outcome, caught <-chan struct{}) error {
	proposals, err := l.bus.Proposals(ctx)
	if err != nil {
		return err
	}
	var outcomes []sampling.Outcome
wait:
	for {
		select {
		case o := <-outs:
			outcomes = append(outcomes, o)
		case <-caught:
			// Tail hands over every stored outcome before it signals, so
			// the ones still buffered are all there now.
			for {
				select {
				case o := <-outs:
					outcomes = append(outcomes, o)
				default:
					break wait
				}
			}
		case <-ctx.Done():
			return nil
		}
	}
	prev, exists, err := l.bus.State(ctx)
	if err != nil {
		return err
	}
	l.startedAt = time.Now().UTC()
	if exists && !prev.StartedAt.IsZero() {
		l.startedAt = prev.StartedAt
	}
	l.bus.SetEpoch(l.startedAt)
	if l.specJSON, err = l.spec.ToJSON(); err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	opts := sampling.Options{StartedAt: l.startedAt, Logger: l.log}
	if len(l.spec.Sampler.WarmStart) > 0 {
		warm, notes, err := readWarmStart(ctx, l.js, l.spec)
		if err != nil {
			return fmt.Errorf("sampler: spec: %w", err)
		}
		for _, n := range notes {
			l.log.Warn().Msg(n)
		}
		if opts.Prior, err = newPrior(l.spec, warm); err != nil {
			return fmt.Errorf("sampler: spec: %w", err)
		}
		l.log.Info().Strs("warm_start", opts.Prior.Studies()).Int("prior_trials", opts.Prior.Trials()).Msg("warm start")
	}
	l.st, err = sampling.NewStudy(l.spec, opts)
	if err != nil {
		return fmt.Errorf("sampler: %w", err)
	}
	if err := l.st.Restore(proposals, outcomes); err != nil {
		// Outcomes of trials with no proposal and no params: logged, not fatal.
		l.log.Warn().Err(err).Msg("part of the record could not be restored")
	}
	if note := l.st.Deprecation(); note != "" {
		l.log.Warn().Msg(note)
	}
	c := l.st.Counters()
	l.log.Info().Str("algorithm", l.st.Algorithm()).Int("n_trials", l.st.NTrials()).
		Int("proposed", c.Proposed).Int("benchmarked", c.Benchmarked()).Int("rejected", c.Rejected).
		Int("in_flight", c.InFlight).Int("next_trial", l.st.NextTrial()).
		Bool("resumed", exists).Str("previous_status", prev.Status).Msg("study restored")
	return nil
}

// refreshCapacity reads the fleet's capacity unless MaxInFlight fixes it.
func (l *loop) refreshCapacity(ctx context.Context) {
	if l.cfg.MaxInFlight > 0 {
		l.capacity = l.cfg.MaxInFlight
		return
	}
	slots, runners, err := l.bus.FleetCapacity(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("cannot read the fleet; keeping the last capacity")
		}
		return
	}
	capacity := 0
	if runners > 0 {
		capacity = fleetCapacity(slots, l.cfg.Spec.Sampler.MaxInFlight)
	}
	if capacity != l.capacity || runners != l.runners {
		if runners == 0 {
			l.log.Info().Msg("no live runner: waiting before proposing")
		} else {
			l.log.Info().Int("runners", runners).Int("capacity", capacity).Msg("fleet capacity")
		}
	}
	l.capacity, l.runners = capacity, runners
}

// fleetCapacity is how many trials to keep in flight on a fleet of slots
// (limit > 0 caps it): every slot, plus a sixteenth more on a fleet of 16
// slots or more, so that a runner finishing a trial finds the next one
// already queued while the sampler is still learning from the result (on a
// large fleet results arrive faster than one proposal takes). A small fleet
// gets no extra: there each proposal should see as many results as it can.
func fleetCapacity(slots, limit int) int {
	c := max(slots, 1)
	if slots >= 16 {
		c += slots / 16
	}
	if limit > 0 && c > limit {
		c = limit
	}
	return c
}

// propose fills the room left under the capacity and the budget.
func (l *loop) propose(ctx context.Context, now time.Time) error {
	room := l.st.Room(l.capacity)
	if room <= 0 {
		return nil
	}
	began := time.Now()
	props, err := l.st.Propose(room)
	l.metrics.proposedBatch(len(props), time.Since(began))
	if err != nil && !errors.Is(err, sampling.ErrSpaceExhausted) {
		return fmt.Errorf("sampler: propose: %w", err)
	}
	for _, p := range props {
		if err := l.bus.PublishProposal(ctx, p, now); err != nil {
			return err
		}
		l.log.Info().Int("trial", p.Trial).Str("sampler", p.Sampler).Msg("proposed")
		l.log.Debug().Int("trial", p.Trial).Interface("params", p.Params).Msg("proposal params")
	}
	return nil
}

// tell records one outcome.
func (l *loop) tell(o sampling.Outcome) {
	lg := l.log.With().Int("trial", o.Trial).Str("outcome", o.Kind.String()).Logger()
	if err := l.st.Tell(o); err != nil {
		lg.Error().Err(err).Msg("cannot record the outcome")
		return
	}
	e := lg.Info()
	if o.FailureClass != "" {
		e = e.Str("failure_class", o.FailureClass)
	}
	if len(o.Rules) > 0 {
		e = e.Strs("rules", o.Rules)
	}
	c := l.st.Counters()
	e.Int("benchmarked", c.Benchmarked()).Int("n_trials", l.st.NTrials()).Int("in_flight", c.InFlight).Msg("outcome")
}

// sync writes the counters to the study's KV entry when they changed. A
// failed write is logged: the entry is a view, rebuilt on the next write.
func (l *loop) sync(ctx context.Context) {
	c := l.st.Counters()
	l.metrics.counters(c, l.st.NTrials())
	if l.wrote && c == l.synced {
		return
	}
	if err := l.writeState(ctx, events.StudyRunning, ""); err != nil {
		if ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("cannot update the study state")
		}
		return
	}
	l.synced, l.wrote = c, true
}

func (l *loop) writeState(ctx context.Context, status, reason string) error {
	c := l.st.Counters()
	_, err := l.bus.UpdateState(ctx, func(s *events.StudyState, exists bool) error {
		if !exists || s.StartedAt.IsZero() {
			s.StartedAt = l.startedAt
		}
		s.Study = l.spec.StudyName
		s.Spec = l.specJSON
		s.NTrials = l.st.NTrials()
		s.Status = status
		s.StopReason = reason
		s.Proposed, s.Benchmarked, s.Rejected = c.Proposed, c.Benchmarked(), c.Rejected
		s.Pruned, s.GPUHours = c.Pruned, c.GPUSeconds/3600
		s.UpdatedAt = time.Now().UTC()
		return nil
	})
	return err
}

// complete marks the study complete and logs the summary.
func (l *loop) complete(ctx context.Context, reason string) error {
	if err := l.writeState(ctx, events.StudyComplete, reason); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sampler: mark study complete: %w", err)
	}
	c := l.st.Counters()
	l.log.Info().Str("stop_reason", reason).Int("n_trials", l.st.NTrials()).
		Int("proposed", c.Proposed).Int("completed", c.Completed).Int("failed", c.Failed).
		Int("rejected", c.Rejected).Int("duplicates", c.Duplicates).Int("slo_missed", c.Infeasible).
		Int("pruned", c.Pruned).Float64("gpu_hours", c.GPUSeconds/3600).
		Int("pareto_size", l.st.FrontSize()).Msg("study complete")
	return nil
}
