// Package natsio is the runner's NATS adapter: it provisions the per-GPU-class
// work-queue consumers, claims trials that fit the free GPUs, runs them
// through a TrialRunner while heartbeating, publishes progress and the one
// result of each trial, acks only after the result is stored, and keeps the
// runner's entry in the fleet bucket alive.
//
// Consumes: stream SGTUNE_TRIALS through the shared durables runners-g<N>
// (filter sgtune.trials.*.g<N>.*), one per GPU count N up to the host's, and
// SGTUNE_ADVISORIES through runners-max-deliveries (WatchMaxDeliveries).
// Produces: sgtune.outcomes.<study>.<trial> (TrialResult, expected last
// subject sequence 0), sgtune.progress.<study>.<trial> (TrialProgress),
// sgtune.dlq.sgtune_trials (DeadLetter), KV sgtune_fleet/<runner id>.
//
// Ack policy of a claimed trial:
//
//	malformed payload or GPU count not matching its subject -> dead letter, TermWithReason
//	outcome subject already holds a result (redelivery)     -> DoubleAck, not run again
//	result published (or already recorded)                  -> DoubleAck
//	result publish failed                                    -> NakWithDelay(backoff)
//	infrastructure error while running                       -> NakWithDelay(backoff); at MaxDeliver dead letter + Term
//	runner shutting down                                     -> NakWithDelay(HandBackDelay): hand back
package natsio

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
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

// Config tunes the adapter. Zero values take the defaults in parentheses.
type Config struct {
	// RunnerID names this runner in results, progress and the fleet bucket (required).
	RunnerID string
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
	// ReserveAfter is how long trials of a class that does not fit the free
	// GPUs must have waited before the class holds GPUs for itself (the
	// reservation rule); until then smaller trials keep being claimed, so
	// GPUs drain only for a trial that did not get its GPUs in the ordinary
	// course of trials ending, and a second large trial queued meanwhile
	// shares the drain. Zero means the mean duration of the trials seen on
	// this host (at once before any ended); negative means at once.
	ReserveAfter time.Duration
	// Backfill picks how trials may start on GPUs held for a waiting larger
	// trial (BackfillCost).
	Backfill BackfillPolicy
	// MaxBackfillWait stops backfilling once the reserved class has waited
	// this long since it could first not start, so its trial starts at most
	// this long plus the longest running trial after that. Zero means the
	// reservation delay plus the longest trial seen on this host. Only
	// BackfillCost uses it.
	MaxBackfillWait time.Duration
}

// BackfillPolicy names a backfilling rule.
type BackfillPolicy string

const (
	// BackfillCost estimates each running trial's time left from the
	// durations seen per class given how long it has run, and backfills a
	// class when its expected GPU work outweighs the expected delay it puts
	// on the reserved trial (packing.BackfillByCost), while the reserved
	// class has waited less than MaxBackfillWait. The default.
	BackfillCost BackfillPolicy = "cost"
	// BackfillMean is plain EASY backfilling on per-class mean durations: a
	// trial may start if its class's mean ends before the reserved trial's
	// expected start, an overdue trial counting as ending now.
	BackfillMean BackfillPolicy = "mean"
)

func (c *Config) setDefaults() {
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
	js    jetstream.JetStream
	cfg   Config
	exec  TrialRunner
	log   zerolog.Logger
	cons  map[int]jetstream.Consumer
	total int

	mu      sync.Mutex
	alloc   *packing.Allocator
	running int
	started time.Time
	// For backfilling: the trials running now, what trials of each GPU
	// class (and of all classes) took on this host, and since when each
	// class that does not fit the free GPUs has had trials waiting.
	inFlight map[uint64]runningTrial
	nextID   uint64
	took     map[int]*packing.History
	tookAll  packing.History
	blocked  map[int]time.Time

	finished chan struct{} // a trial ended: GPUs may be free
	wg       sync.WaitGroup
}

type runningTrial struct {
	gpus  int
	since time.Time
}

// minClassSamples is how many finished trials of a class its own duration
// estimates need; until then the durations of all classes stand in.
const minClassSamples = 3

// expected returns the mean duration of finished trials per class; a class
// not seen yet gets the mean over all classes (none when nothing finished).
func (r *Runner) expectedLocked() map[int]time.Duration {
	out := map[int]time.Duration{}
	if r.tookAll.Len() == 0 {
		return out
	}
	for n := 1; n <= r.total; n++ {
		out[n] = r.tookAll.Mean()
		if h := r.took[n]; h.Len() > 0 {
			out[n] = h.Mean()
		}
	}
	return out
}

// historyLocked returns the durations that stand for class n: its own once
// it has minClassSamples, else those of every class.
func (r *Runner) historyLocked(n int) *packing.History {
	if h := r.took[n]; h.Len() >= minClassSamples {
		return h
	}
	return &r.tookAll
}

// noteBlockedLocked records since when each class that does not fit the
// free GPUs has had trials waiting; a class that fits is not blocked.
func (r *Runner) noteBlockedLocked(free int, pending map[int]bool, now time.Time) {
	for n := 1; n <= r.total; n++ {
		switch {
		case n <= free || !pending[n]:
			delete(r.blocked, n)
		case r.blocked[n].IsZero():
			r.blocked[n] = now
		}
	}
}

// heldForLocked drops from pending the blocked classes that have waited less
// than the reservation delay: they do not hold GPUs yet.
func (r *Runner) heldForLocked(pending map[int]bool, now time.Time) map[int]bool {
	after := r.reserveAfterLocked()
	if after <= 0 {
		return pending
	}
	out := make(map[int]bool, len(pending))
	for n, ok := range pending {
		if since, blocked := r.blocked[n]; ok && blocked && now.Sub(since) < after {
			continue
		}
		out[n] = ok
	}
	return out
}

// reserveAfterLocked is Config.ReserveAfter with its default: the mean
// duration of the trials seen on this host (0, at once, before any ended).
func (r *Runner) reserveAfterLocked() time.Duration {
	switch {
	case r.cfg.ReserveAfter < 0:
		return 0
	case r.cfg.ReserveAfter > 0:
		return r.cfg.ReserveAfter
	}
	return r.tookAll.Mean()
}

// backfillLocked returns the classes that may be claimed although a larger
// class is reserved (packing.Backfill or packing.BackfillByCost), given what
// is running now.
func (r *Runner) backfillLocked(free int, pending map[int]bool, now time.Time) []int {
	need := packing.Reserved(free, r.total, pending)
	if need == 0 {
		return nil
	}
	if r.cfg.Backfill != BackfillMean {
		return r.backfillByCostLocked(free, need, pending, now)
	}
	expected := r.expectedLocked()
	if len(expected) == 0 {
		return nil // nothing finished yet: no estimates
	}
	running := make([]packing.Running, 0, len(r.inFlight))
	for _, t := range r.inFlight {
		running = append(running, packing.Running{GPUs: t.gpus, Remaining: max(expected[t.gpus]-now.Sub(t.since), 0)})
	}
	return packing.Backfill(free, pending, expected, packing.ShadowTime(free, need, running))
}

// backfillByCostLocked is BackfillCost: nothing once the reserved class need
// has waited MaxBackfillWait (by default the reservation delay plus the
// longest trial seen), else the classes packing.BackfillByCost lets start
// on the free GPUs given the shadow time, each running trial's time left
// being estimated from how long it has run (packing.History.Remaining).
func (r *Runner) backfillByCostLocked(free, need int, pending map[int]bool, now time.Time) []int {
	if r.tookAll.Len() == 0 {
		return nil // nothing finished yet: no estimates
	}
	limit := r.cfg.MaxBackfillWait
	if limit <= 0 {
		limit = r.reserveAfterLocked() + r.tookAll.Max()
	}
	if since, ok := r.blocked[need]; ok && now.Sub(since) >= limit {
		return nil // the reserved trial has waited long enough: drain for it
	}
	running := make([]packing.Running, 0, len(r.inFlight))
	for _, t := range r.inFlight {
		running = append(running, packing.Running{GPUs: t.gpus, Remaining: r.historyLocked(t.gpus).Remaining(now.Sub(t.since))})
	}
	hist := make(map[int]*packing.History, r.total)
	for n := 1; n <= free; n++ {
		hist[n] = r.historyLocked(n)
	}
	return packing.BackfillByCost(free, r.total, pending, hist, packing.ShadowTime(free, need, running))
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
		log:      cfg.Logger, // Run's logger already carries the runner id
		cons:     map[int]jetstream.Consumer{},
		total:    len(cfg.GPUs),
		alloc:    packing.NewAllocator(idx),
		inFlight: map[uint64]runningTrial{},
		took:     map[int]*packing.History{},
		blocked:  map[int]time.Time{},
		finished: make(chan struct{}, 1),
	}, nil
}

// ConsumerConfig is the shared work-queue consumer of trials needing n GPUs.
// Every runner creates it with the same settings (CreateOrUpdate is idempotent).
func ConsumerConfig(n int, ackWait time.Duration, maxDeliver, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       events.TrialsDurable(n),
		Description:   fmt.Sprintf("runners claim trials needing %d GPU(s)", n),
		FilterSubject: events.TrialsOfClass(n),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: maxAckPending,
	}
}

// EnsureConsumers creates the consumers of every GPU class up to the host's
// GPU count (the streams must exist: natsx.EnsureTopology), or reconciles
// them with ReconcileConsumer when another runner created them first, and
// adopts the smallest AckWait in force for its heartbeats.
func (r *Runner) EnsureConsumers(ctx context.Context) error {
	for _, n := range packing.Classes(r.total) {
		want := ConsumerConfig(n, r.cfg.AckWait, r.cfg.MaxDeliver, r.cfg.MaxAckPending)
		if cur, err := r.js.Consumer(ctx, events.StreamTrials, events.TrialsDurable(n)); err == nil {
			have := cur.CachedInfo().Config
			want = ReconcileConsumer(have, want)
			if have.AckWait != r.cfg.AckWait || have.MaxDeliver != r.cfg.MaxDeliver {
				r.log.Warn().Str("consumer", want.Durable).Dur("ack_wait", have.AckWait).Int("max_deliver", have.MaxDeliver).
					Dur("configured_ack_wait", r.cfg.AckWait).Int("configured_max_deliver", r.cfg.MaxDeliver).
					Msg("the fleet's consumer settings differ from this runner's: keeping the fleet's")
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("read consumer %s: %w", events.TrialsDurable(n), err)
		}
		c, err := r.js.CreateOrUpdateConsumer(ctx, events.StreamTrials, want)
		if err != nil {
			return fmt.Errorf("ensure consumer %s: %w", events.TrialsDurable(n), err)
		}
		r.cons[n] = c
		if aw := c.CachedInfo().Config.AckWait; aw > 0 && aw < r.cfg.AckWait {
			r.cfg.AckWait = aw // heartbeat within the shortest AckWait in force
		}
	}
	return nil
}

// ReconcileConsumer merges this runner's wanted settings of a shared trial
// consumer into the ones in force, so runners started with different
// settings do not flip the consumer back and forth: AckWait and MaxDeliver
// stay as the fleet has them (the first runner's; change them for the whole
// fleet with `nats consumer edit`), and MaxAckPending, the fleet-wide cap on
// trials of the class claimed at once, is only ever raised, never lowered
// below what another runner needs.
func ReconcileConsumer(have, want jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	out := want
	if have.AckWait > 0 {
		out.AckWait = have.AckWait
	}
	if have.MaxDeliver != 0 {
		out.MaxDeliver = have.MaxDeliver
	}
	out.MaxAckPending = max(have.MaxAckPending, want.MaxAckPending)
	return out
}

// Run claims and runs trials until ctx is done, heartbeating the fleet entry.
// On shutdown it stops claiming, lets running trials stop their servers and
// hands them back, removes the fleet entry and returns nil.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.cons) == 0 {
		if err := r.EnsureConsumers(ctx); err != nil {
			return err
		}
	}
	r.started = time.Now().UTC()
	// A core subscription on the trials subjects wakes the claim loop the
	// moment a trial is queued, so claiming does not wait for a poll.
	wake := make(chan struct{}, 1)
	sub, err := r.js.Conn().Subscribe(events.SubjectTrialsAll, func(*nats.Msg) { signal(wake) })
	if err != nil {
		return fmt.Errorf("subscribe to new trials: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.heartbeat(ctx)
	}()
	advDone := make(chan struct{})
	go func() {
		defer close(advDone)
		if err := WatchMaxDeliveries(ctx, r.js, r.log); err != nil && ctx.Err() == nil {
			r.log.Error().Err(err).Msg("max-deliveries advisories are not watched")
		}
	}()
	r.claimLoop(ctx, wake)
	r.wg.Wait()
	<-hbDone
	<-advDone
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (r *Runner) claimLoop(ctx context.Context, wake chan struct{}) {
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		claimed := r.claimOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if claimed {
			continue // look again at once: more may fit
		}
		poll.Reset(r.cfg.PollEvery)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-r.finished:
		case <-poll.C:
		}
	}
}

// claimOnce claims at most one trial; it reports whether it did.
func (r *Runner) claimOnce(ctx context.Context) bool {
	r.mu.Lock()
	free, slots := r.alloc.FreeCount(), r.cfg.MaxConcurrentTrials-r.running
	r.mu.Unlock()
	if free == 0 || slots <= 0 {
		return false
	}
	pending := map[int]bool{}
	for n := 1; n <= r.total; n++ {
		if n <= free {
			pending[n] = true // just try to fetch
			continue
		}
		info, err := r.cons[n].Info(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Int("gpus", n).Msg("consumer info failed")
			}
			continue
		}
		if info.NumPending > 0 {
			pending[n] = true
		}
	}
	r.mu.Lock()
	now := time.Now()
	r.noteBlockedLocked(free, pending, now)
	held := r.heldForLocked(pending, now)
	classes := packing.Claimable(free, r.total, slots, held)
	if len(classes) == 0 {
		classes = r.backfillLocked(free, held, now)
	}
	r.mu.Unlock()
	for _, n := range classes {
		batch, err := r.cons[n].FetchNoWait(1)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Int("gpus", n).Msg("fetch failed")
			}
			continue
		}
		for msg := range batch.Messages() {
			r.handle(ctx, msg, n)
			return true
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
			r.log.Debug().Err(err).Int("gpus", n).Msg("fetch ended with an error")
		}
	}
	return false
}

// handle takes one claimed message: decode, skip if already recorded,
// allocate GPUs and start the trial.
func (r *Runner) handle(ctx context.Context, msg jetstream.Msg, class int) {
	meta := metaOf(msg)
	log := r.log.With().Str("subject", meta.subject).Uint64("stream_seq", meta.streamSeq).Uint64("delivered", meta.delivered).Logger()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()

	q, err := events.Decode[events.TrialQueued](msg.Data(), events.TypeTrialQueued)
	if err == nil && q.GPUs != class {
		err = fmt.Errorf("%w: trial needs %d GPUs but was queued as %s", events.ErrMalformed, q.GPUs, events.GPUClass(class))
	}
	if err != nil {
		log.Error().Err(err).Msg("malformed trial; dead-lettered and terminated")
		r.deadLetter(actx, msg, meta, err.Error(), log)
		if err := msg.TermWithReason(truncate(err.Error(), 256)); err != nil {
			log.Warn().Err(err).Msg("term failed")
		}
		return
	}
	log = log.With().Str("study", q.Study).Int("trial", q.Trial).Logger()

	// Idempotency: a redelivered trial whose result is already stored is done.
	if _, found, err := natsx.LastOnSubject(actx, r.js, events.StreamOutcomes, events.OutcomeSubject(q.Study, q.Trial)); err != nil {
		log.Warn().Err(err).Msg("could not check for an earlier outcome; retrying later")
		r.nak(msg, natsx.Backoff(max(meta.delivered, 1)), log)
		return
	} else if found {
		log.Info().Msg("trial already has an outcome; acking the redelivery without running it")
		if err := msg.DoubleAck(actx); err != nil {
			log.Warn().Err(err).Msg("ack failed")
		}
		return
	}

	r.mu.Lock()
	gpus, err := r.alloc.Allocate(class)
	id := r.nextID
	if err == nil {
		r.running++
		r.nextID++
		r.inFlight[id] = runningTrial{gpus: class, since: time.Now()}
	}
	r.mu.Unlock()
	if err != nil { // cannot happen: only this loop allocates, and it checked
		log.Error().Err(err).Msg("no GPUs for a claimed trial; handing it back")
		r.nak(msg, r.cfg.HandBackDelay, log)
		return
	}
	log.Info().Ints("gpus", gpus).Msg("claimed trial")
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			_ = r.alloc.Release(gpus)
			r.running--
			took := time.Since(r.inFlight[id].since)
			if r.took[class] == nil {
				r.took[class] = &packing.History{}
			}
			r.took[class].Add(took)
			r.tookAll.Add(took)
			delete(r.inFlight, id)
			r.mu.Unlock()
			signal(r.finished)
		}()
		r.runTrial(ctx, msg, meta, q, gpus, log)
	}()
}

type msgMeta struct {
	subject   string
	stream    string
	consumer  string
	streamSeq uint64
	delivered uint64
}

func metaOf(msg jetstream.Msg) msgMeta {
	m := msgMeta{subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		m.stream, m.consumer = md.Stream, md.Consumer
		m.streamSeq, m.delivered = md.Sequence.Stream, md.NumDelivered
	}
	return m
}

// runTrial runs a claimed trial with InProgress heartbeats and settles its message.
func (r *Runner) runTrial(ctx context.Context, msg jetstream.Msg, meta msgMeta, q events.TrialQueued, gpus []int, log zerolog.Logger) {
	claimedAt := time.Now()
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHB()
	var seq int
	var seqMu sync.Mutex
	progress := func(phase, message string) {
		seqMu.Lock()
		seq++
		n := seq
		seqMu.Unlock()
		r.publishProgress(ctx, q, meta, gpus, phase, message, n, claimedAt, log)
	}
	go func() {
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Warn().Err(err).Msg("in-progress heartbeat failed")
				}
				progress(events.PhaseHeartbeat, "")
			}
		}
	}()
	progress(events.PhaseClaimed, "")

	res, err := r.exec.Run(ctx, q, gpus, progress)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			log.Info().Msg("runner stopping; handing the trial back")
			r.nak(msg, r.cfg.HandBackDelay, log)
		case meta.delivered >= uint64(r.cfg.MaxDeliver):
			log.Error().Err(err).Msg("trial failed on infrastructure on its last delivery; dead-lettered")
			r.deadLetter(actx, msg, meta, fmt.Sprintf("failed %d deliveries, last: %v", meta.delivered, err), log)
			if err := msg.TermWithReason(truncate("max deliveries: "+err.Error(), 256)); err != nil {
				log.Warn().Err(err).Msg("term failed")
			}
		default:
			log.Error().Err(err).Msg("trial hit an infrastructure error; handing it back")
			r.nak(msg, natsx.Backoff(max(meta.delivered, 1)), log)
		}
		return
	}
	// Ack only after the result is stored (reference/jetstream.md §8 rule 6).
	perr := natsx.PublishOnce(actx, r.js, events.OutcomeSubject(q.Study, q.Trial), res)
	switch {
	case perr == nil:
		log.Info().Str("state", res.State).Str("failure_class", res.FailureClass).Msg("result recorded")
	case errors.Is(perr, natsx.ErrAlreadyRecorded):
		log.Warn().Msg("trial already had a result (another runner finished it); acking")
	default:
		log.Error().Err(perr).Msg("could not publish the result; the trial will be redelivered")
		r.nak(msg, natsx.Backoff(max(meta.delivered, 1)), log)
		return
	}
	if err := msg.DoubleAck(actx); err != nil {
		log.Warn().Err(err).Msg("ack failed; a redelivery will find the result and be acked")
	}
}

func (r *Runner) nak(msg jetstream.Msg, delay time.Duration, log zerolog.Logger) {
	if err := msg.NakWithDelay(delay); err != nil {
		log.Warn().Err(err).Msg("nak failed; AckWait will redeliver the trial")
	}
}

func (r *Runner) publishProgress(ctx context.Context, q events.TrialQueued, meta msgMeta, gpus []int, phase, message string, n int, claimedAt time.Time, log zerolog.Logger) {
	ev := events.TrialProgress{
		Envelope: events.NewEnvelope(events.TypeTrialProgress, q.Study, q.Trial, time.Now()).In(q.Incarnation),
		Runner:   r.cfg.RunnerID, Phase: phase, GPUs: gpus, Message: message,
		Elapsed: events.Duration(time.Since(claimedAt)),
	}
	// Each progress event is distinct: the default id would be deduplicated.
	ev.ID = fmt.Sprintf("%s:%s:%d:%d", ev.ID, r.cfg.RunnerID, meta.delivered, n)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := natsx.Publish(pctx, r.js, events.ProgressSubject(q.Study, q.Trial), ev); err != nil {
		log.Debug().Err(err).Str("phase", phase).Msg("progress not published")
	}
}

// deadLetter copies a message to the dead-letter stream before it is terminated
// (on a work queue a terminated message is gone) and records a FAILED outcome
// for its trial, so the sampler does not wait for it forever.
func (r *Runner) deadLetter(ctx context.Context, msg jetstream.Msg, meta msgMeta, reason string, log zerolog.Logger) {
	m := natsx.Meta{Subject: meta.subject, Stream: meta.stream, Consumer: meta.consumer, StreamSeq: meta.streamSeq, Delivered: meta.delivered}
	if err := natsx.DeadLetter(ctx, r.js, msg.Data(), m, reason); err != nil {
		log.Error().Err(err).Msg("could not store the dead letter")
	}
	if err := natsx.RecordDeadLetterOutcome(ctx, r.js, msg.Data(), m, reason); err != nil {
		log.Error().Err(err).Msg("could not record the dead-lettered trial's outcome")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Status returns the runner's current fleet entry.
func (r *Runner) Status() events.RunnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return events.RunnerStatus{
		Runner: r.cfg.RunnerID, Host: r.cfg.Host, Backend: r.cfg.Backend, GPUs: r.cfg.GPUs,
		Slots: r.cfg.MaxConcurrentTrials, Busy: r.running, FreeGPUs: r.alloc.Free(),
		StartedAt: r.started, UpdatedAt: time.Now().UTC(),
	}
}

// heartbeat refreshes the fleet entry until ctx is done, then removes it.
func (r *Runner) heartbeat(ctx context.Context) {
	kv, err := natsx.KV(ctx, r.js, events.BucketFleet)
	if err != nil {
		r.log.Error().Err(err).Msg("fleet bucket unavailable; no heartbeats")
		return
	}
	t := time.NewTicker(r.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		if err := natsx.PutJSON(ctx, kv, r.cfg.RunnerID, r.Status()); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("fleet heartbeat failed")
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := kv.Delete(dctx, r.cfg.RunnerID); err != nil {
				r.log.Debug().Err(err).Msg("could not remove the fleet entry; it will expire")
			}
			return
		case <-t.C:
		}
	}
}
