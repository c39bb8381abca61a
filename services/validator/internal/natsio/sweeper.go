package natsio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// Sweeper ends queued trials no live runner can run (the fleet shrank after
// they were queued: the only runner with 8 GPUs left). It warns at once,
// naming the GPU class that has work but no runner, and after Wait records
// each such trial as FAILED (class no-runner, the reason naming the live
// fleet) and removes it from the work queue, so the sampler learns and the
// study does not wait forever. A trial whose lease is held (a runner is
// running it) is left alone. Several validators may sweep at once: the
// outcome is published once and the trial lease serialises the removal.
type Sweeper struct {
	js    jetstream.JetStream
	fleet *Fleet
	opts  SweepOptions

	since  map[int]time.Time // class -> when it was first seen unservable
	warned map[int]bool
}

// SweepOptions tune a Sweeper.
type SweepOptions struct {
	// Wait is how long a class must stay unservable before its trials fail (2 min).
	Wait time.Duration
	// Every is how often the queue is looked at (5 s).
	Every time.Duration
	// Instance names this validator in trial leases.
	Instance string
	Now      func() time.Time
	Logger   zerolog.Logger
}

// DefaultSweepWait is SweepOptions.Wait's default.
const DefaultSweepWait = 2 * time.Minute

// NewSweeper returns a sweeper reading the fleet through fleet.
func NewSweeper(js jetstream.JetStream, fleet *Fleet, opts SweepOptions) *Sweeper {
	if opts.Wait <= 0 {
		opts.Wait = DefaultSweepWait
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Instance == "" {
		opts.Instance = natsx.Instance()
	}
	return &Sweeper{js: js, fleet: fleet, opts: opts, since: map[int]time.Time{}, warned: map[int]bool{}}
}

// Run sweeps until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn().Err(err).Msg("could not look for trials no runner can run")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep looks at the queue once.
func (s *Sweeper) Sweep(ctx context.Context) error {
	trials, err := s.js.Stream(ctx, events.StreamTrials)
	if err != nil {
		return err
	}
	info, err := trials.Info(ctx, jetstream.WithSubjectFilter(events.SubjectTrialsAll))
	if err != nil {
		return fmt.Errorf("read the queued trials: %w", err)
	}
	queued := map[int]int{}
	subjects := map[int][]string{}
	for subj, n := range info.State.Subjects {
		if class, ok := classOf(subj); ok && n > 0 {
			queued[class] += int(n)
			subjects[class] = append(subjects[class], subj)
		}
	}
	hosts, err := s.fleet.Hosts(ctx)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	bad := rules.UnservableClasses(queued, hosts)
	for class := range s.since {
		if !contains(bad, class) {
			delete(s.since, class)
			delete(s.warned, class)
		}
	}
	for _, class := range bad {
		if s.since[class].IsZero() {
			s.since[class] = now
		}
		if !s.warned[class] {
			s.warned[class] = true
			s.opts.Logger.Warn().Str("gpu_class", events.GPUClass(class)).Int("queued", queued[class]).
				Int("largest_runner", rules.LargestHost(hosts)).Strs("fleet", rules.DescribeHosts(hosts)).Dur("fails_after", s.opts.Wait).
				Msgf("GPU class %s has %d queued trial(s) but no live runner has %d GPUs", events.GPUClass(class), queued[class], class)
		}
		waited := now.Sub(s.since[class])
		if waited < s.opts.Wait {
			continue
		}
		for _, subj := range subjects[class] {
			if err := s.fail(ctx, trials, subj, class, rules.NoRunnerReason(class, hosts, waited.Round(time.Second).String())); err != nil {
				s.opts.Logger.Warn().Err(err).Str("subject", subj).Msg("could not end a trial no runner can run")
			}
		}
	}
	return nil
}

// fail records the queued trial on subj as failed and removes it from the queue.
func (s *Sweeper) fail(ctx context.Context, trials jetstream.Stream, subj string, class int, reason string) error {
	m, err := trials.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	q, err := events.Decode[events.TrialQueued](m.Data, events.TypeTrialQueued)
	if err != nil {
		return nil // a runner dead-letters malformed trials
	}
	log := s.opts.Logger.With().Str("study", q.Study).Int("trial", q.Trial).Str("gpu_class", events.GPUClass(class)).Logger()
	leases, err := natsx.OpenLeases(ctx, s.js)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	now := time.Now().UTC()
	key := events.TrialLeaseKey(q.Study, q.Trial)
	rev, err := leases.Acquire(ctx, key, events.Lease{
		Kind: events.LeaseValidator, Holder: "validator", Instance: s.opts.Instance, Host: host, PID: os.Getpid(),
		Token: s.opts.Instance + ":" + natsx.RandomSuffix(), Study: q.Study, Trial: q.Trial, Incarnation: q.Incarnation,
		AcquiredAt: now, RenewedAt: now,
	})
	var held *natsx.HeldError
	if errors.As(err, &held) {
		return nil // a runner has it after all
	}
	if err != nil {
		return err
	}
	defer func() { _ = leases.Release(context.WithoutCancel(ctx), key, rev) }()
	res := events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, q.Study, q.Trial, now).In(q.Incarnation),
		Params:   q.Params, State: events.StateFailed, FailureClass: events.FailNoRunner, Reason: reason,
		Backend: "none", StartedAt: now, FinishedAt: now,
	}
	if err := natsx.PublishOnce(ctx, s.js, events.OutcomeSubject(q.Study, q.Trial), res); err != nil && !errors.Is(err, natsx.ErrAlreadyRecorded) {
		return err
	}
	if err := trials.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove the trial from the queue: %w", err)
	}
	log.Error().Str("reason", reason).Msg("queued trial failed: no live runner can run it")
	return nil
}

// classOf reads the GPU count of a trial subject sgtune.trials.<study>.g<N>.<trial>.
func classOf(subject string) (int, bool) {
	tok := strings.Split(subject, ".")
	if len(tok) != 5 || !strings.HasPrefix(tok[3], "g") {
		return 0, false
	}
	n, err := strconv.Atoi(tok[3][1:])
	return n, err == nil && n > 0
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
