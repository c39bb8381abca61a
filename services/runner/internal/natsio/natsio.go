// Package natsio is the runner's NATS adapter: it provisions the per-GPU-class
// work-queue consumers, claims trials that fit the free GPUs (which classes
// and which GPUs is packing.Scheduler's decision), runs them through a
// TrialRunner while heartbeating, publishes progress and the one result of
// each trial, settles every message through natsx.Decide and natsx.Settle,
// and keeps the runner's entry in the fleet bucket alive.
//
// Consumes: stream SGTUNE_TRIALS through the shared durables runners-g<N>
// (filter sgtune.trials.*.g<N>.*), one per GPU count N up to the host's, and
// SGTUNE_ADVISORIES through runners-max-deliveries (WatchMaxDeliveries).
// Produces: sgtune.outcomes.<study>.<trial> (TrialResult, expected last
// subject sequence 0), sgtune.progress.<study>.<trial> (TrialProgress),
// sgtune.dlq.sgtune_trials (DeadLetter), KV sgtune_fleet/<runner id>.
//
// Verdicts on a claimed trial (natsx.Decide turns them into the ack):
//
//	malformed payload or GPU count not matching its subject -> Permanent: dead letter, TermWithReason
//	outcome subject already holds a result (redelivery)     -> nil: DoubleAck, not run again
//	result published (or already recorded)                  -> nil: DoubleAck
//	result publish failed                                    -> error: NakWithDelay(backoff)
//	infrastructure error while running                       -> error: NakWithDelay(backoff); at MaxDeliver dead letter + Term
//	runner shutting down                                     -> hand back: NakWithDelay(HandBackDelay)
package natsio

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/runner/internal/packing"
)

// TrialRunner runs one trial on the given GPUs (trial.Executor implements
// it). A returned error means the trial must be handed back, not recorded.
type TrialRunner interface {
	Run(ctx context.Context, q events.TrialQueued, gpus []int, progress func(phase, message string)) (events.TrialResult, error)
}

// ObservingTrialRunner is a TrialRunner that also reports what a running
// trial has measured so far; the adapter publishes each measurement as
// progress (PhaseMeasured) for early stopping, and a trial the sampler
// stops early is recorded PRUNED with the last one.
type ObservingTrialRunner interface {
	RunObserved(ctx context.Context, q events.TrialQueued, gpus []int, progress func(phase, message string), observe func(events.Measurement)) (events.TrialResult, error)
}

// Config tunes the adapter. Zero values take the defaults in parentheses.
type Config struct {
	// RunnerID names this runner in results, progress and the fleet bucket (required).
	RunnerID string
	// Instance is unique per process (natsx.Instance(), the default): it tells
	// this process's fleet entry and trial leases from another's with the same id.
	Instance string
	// Host is the host name reported in the fleet bucket.
	Host string
	// Backend is reported in the fleet bucket ("sglang", "sim" or "exec").
	Backend string
	// GPUs is the host's inventory (required, at least one GPU).
	GPUs []events.GPU
	// MaxConcurrentTrials caps the trials run at once (the number of GPUs).
	MaxConcurrentTrials int
	// AckWait of the trial consumers (30 s); InProgress is sent every AckWait/3.
	AckWait time.Duration
	// MaxDeliver of the trial consumers (5).
	MaxDeliver int
	// MaxAckPending of each trial consumer, shared by every runner (64).
	MaxAckPending int
	// HeartbeatEvery is how often the fleet entry is refreshed (5 s).
	HeartbeatEvery time.Duration
	// PollEvery is how often an idle runner looks for trials without being
	// woken by a new one (redeliveries and nak'ed trials wake nobody) (1 s).
	PollEvery time.Duration
	// HandBackDelay is the NakWithDelay of trials handed back at shutdown (1 s).
	HandBackDelay time.Duration
	// Logger receives the adapter's lines; give it the runner id field.
	Logger zerolog.Logger
	// GPUHealth, when set, withholds quarantined GPUs from trials and pauses
	// claiming while NVML is gone (gpus.go); both show in the fleet entry.
	GPUHealth GPUHealth
	// DriverVersion and CUDAVersion are reported in the fleet entry.
	DriverVersion, CUDAVersion string
	// ReserveAfter, Backfill and MaxBackfillWait tune the GPU scheduler
	// (packing.SchedulerConfig documents them).
	ReserveAfter    time.Duration
	Backfill        BackfillPolicy
	MaxBackfillWait time.Duration
	// Models, when set, keeps the running studies' models on this host
	// (prefetch.Gate): the runner follows sgtune_studies, names their models
	// to it, claims no trial while it is not ready and shows why in its
	// fleet entry. nil: always ready (the simulator and exec backends).
	Models ModelGate
}

// BackfillPolicy names a backfilling rule (packing.BackfillPolicy).
type BackfillPolicy = packing.BackfillPolicy

// The backfilling rules (packing documents them).
const (
	BackfillCost = packing.BackfillCost
	BackfillMean = packing.BackfillMean
)

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = natsx.Instance()
	}
	if c.MaxConcurrentTrials <= 0 {
		c.MaxConcurrentTrials = len(c.GPUs)
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 64
	}
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = 5 * time.Second
	}
	if c.PollEvery <= 0 {
		c.PollEvery = time.Second
	}
	if c.HandBackDelay <= 0 {
		c.HandBackDelay = time.Second
	}
	if c.Backfill == "" {
		c.Backfill = BackfillCost
	}
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_=/.-]+$`)

// Runner is the adapter. Build it with New, then call Run once.
type Runner struct {
	js      jetstream.JetStream
	cfg     Config
	exec    TrialRunner
	log     zerolog.Logger
	cons    map[int]jetstream.Consumer
	sched   *packing.Scheduler
	started time.Time
	leases  *natsx.Leases
	active  activeTrials
	seen    seenLeases

	fleet    jetstream.KeyValue // sgtune_fleet, once registered
	fleetRev uint64             // revision of this runner's last fleet write

	pausedFor atomic.Value // string: why claiming is paused (gpus.go)

	finished chan struct{} // a trial ended: GPUs may be free
	wg       sync.WaitGroup
}

// New checks cfg and returns an adapter using js and exec.
func New(js jetstream.JetStream, cfg Config, exec TrialRunner) (*Runner, error) {
	if js == nil || exec == nil {
		return nil, errors.New("natsio: nil JetStream or trial runner")
	}
	if !keyPattern.MatchString(cfg.RunnerID) {
		return nil, fmt.Errorf("natsio: runner id %q must be a KV key (letters, digits, _ - . = /)", cfg.RunnerID)
	}
	if len(cfg.GPUs) == 0 {
		return nil, errors.New("natsio: no GPUs")
	}
	cfg.setDefaults()
	idx := make([]int, len(cfg.GPUs))
	for i, g := range cfg.GPUs {
		idx[i] = g.Index
	}
	return &Runner{
		js: js, cfg: cfg, exec: exec,
		log:  cfg.Logger, // Run's logger already carries the runner id
		cons: map[int]jetstream.Consumer{},
		sched: packing.NewScheduler(idx, packing.SchedulerConfig{
			MaxConcurrent: cfg.MaxConcurrentTrials, ReserveAfter: cfg.ReserveAfter,
			Backfill: cfg.Backfill, MaxBackfillWait: cfg.MaxBackfillWait,
		}),
		finished: make(chan struct{}, 1),
	}, nil
}

// Run registers the runner in the fleet (Register; ErrDuplicateRunner when
// another live process uses its id), then claims and runs trials until ctx
// is done, heartbeating the fleet entry. On shutdown it stops claiming,
// lets running trials stop their servers and hands them back, removes the
// fleet entry and returns nil. When another process takes the runner id
// over it stops the same way and returns ErrDuplicateRunner.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.cons) == 0 {
		if err := r.EnsureConsumers(ctx); err != nil {
			return err
		}
	}
	if r.fleet == nil {
		if err := r.Register(ctx); err != nil {
			return err
		}
	}
	leases, err := natsx.OpenLeases(ctx, r.js)
	if err != nil {
		return err
	}
	r.leases = leases
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A core subscription on the trials subjects wakes the claim loop the
	// moment a trial is queued, so claiming does not wait for a poll.
	wake := make(chan struct{}, 1)
	sub, err := r.js.Conn().Subscribe(events.SubjectTrialsAll, func(*nats.Msg) { signal(wake) })
	if err != nil {
		return fmt.Errorf("subscribe to new trials: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var bg sync.WaitGroup
	bg.Go(func() { r.heartbeat(ctx, cancel) })
	bg.Go(func() {
		if err := WatchMaxDeliveries(ctx, r.js, r.log); err != nil && ctx.Err() == nil {
			r.log.Error().Err(err).Msg("max-deliveries advisories are not watched")
		}
	})
	bg.Go(func() { r.watchStops(ctx) })
	if r.cfg.Models != nil {
		bg.Go(func() { r.watchStudyModels(ctx) })
	}
	r.claimLoop(ctx, wake)
	r.wg.Wait()
	bg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, ErrDuplicateRunner) {
		return cause
	}
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
