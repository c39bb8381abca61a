package natsio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

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
	if r.syncGPUHealth() {
		return false // NVML is gone: claim nothing new (gpus.go)
	}
	if ok, _ := r.ready(); !ok {
		return false // the running studies' model is not on this host yet
	}
	free, slots := r.sched.Room()
	if free == 0 || slots <= 0 {
		return false
	}
	total := r.sched.Total()
	pending := map[int]bool{}
	for n := 1; n <= total; n++ {
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
	for _, n := range r.sched.Plan(pending, time.Now()) {
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

// settle settles msg by the shared ack policy given the verdict err.
func (r *Runner) settle(ctx context.Context, msg jetstream.Msg, meta natsx.Meta, verdict error, stopping bool, log zerolog.Logger) {
	d := natsx.Decide(verdict, meta, natsx.Policy{MaxDeliver: r.cfg.MaxDeliver, HandBackDelay: r.cfg.HandBackDelay}, stopping)
	switch d.Action {
	case natsx.ActDeadLetter:
		log.Error().Err(verdict).Str("reason", d.Reason).Msg("trial dead-lettered and terminated")
	case natsx.ActRetry:
		log.Error().Err(verdict).Dur("retry_in", d.Delay).Msg("trial handed back after an infrastructure error")
	case natsx.ActDefer:
		log.Info().Err(verdict).Dur("retry_in", d.Delay).Msg("trial left to its holder")
	case natsx.ActHandBack:
		log.Info().Msg("runner stopping; handing the trial back")
	}
	natsx.Settle(ctx, r.js, msg, meta, d, natsx.SettleOptions{OutcomeOnDeadLetter: true, Logger: log})
}

// decodeTrial decodes a claimed message of GPU class class; a payload that
// does not decode or names another GPU count is Permanent.
func decodeTrial(data []byte, class int) (events.TrialQueued, error) {
	q, err := events.Decode[events.TrialQueued](data, events.TypeTrialQueued)
	if err == nil && q.GPUs != class {
		err = fmt.Errorf("%w: trial needs %d GPUs but was queued as %s", events.ErrMalformed, q.GPUs, events.GPUClass(class))
	}
	if err != nil {
		return q, natsx.Permanent(err)
	}
	return q, nil
}

// handle takes one claimed message: decode, take GPUs and the trial's lease,
// skip it if already recorded, and start the trial.
func (r *Runner) handle(ctx context.Context, msg jetstream.Msg, class int) {
	meta := natsx.MetaOf(msg)
	log := r.log.With().Str("subject", meta.Subject).Uint64("stream_seq", meta.StreamSeq).Uint64("delivered", meta.Delivered).Logger()
	q, err := decodeTrial(msg.Data(), class)
	if err != nil {
		r.settle(ctx, msg, meta, err, false, log)
		return
	}
	log = log.With().Str("study", q.Study).Int("trial", q.Trial).Logger()

	ticket, err := r.sched.Start(class, time.Now())
	if err != nil { // cannot happen: only this loop starts trials, and it checked
		r.settle(ctx, msg, meta, fmt.Errorf("no GPUs for a claimed trial: %w", err), true, log)
		return
	}
	cancelTicket := func() {
		if err := r.sched.Cancel(ticket); err != nil {
			log.Error().Err(err).Msg("releasing the GPUs of a trial not run")
		}
	}
	// The lease first: a redelivery of a trial some live runner (this one
	// included) is running must not launch a second server.
	t, err := r.takeLease(ctx, q, meta, ticket.GPUs, log)
	if err != nil {
		cancelTicket()
		r.settle(ctx, msg, meta, err, false, log)
		return
	}
	// Idempotency: a redelivered trial whose result is already stored is done.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_, found, err := natsx.LastOnSubject(actx, r.js, events.StreamOutcomes, events.OutcomeSubject(q.Study, q.Trial))
	var stop *events.StopRequest
	if err == nil && !found {
		stop, err = r.stopRequested(actx, q)
	}
	cancel()
	switch {
	case err != nil:
		r.releaseLease(ctx, t, log)
		cancelTicket()
		r.settle(ctx, msg, meta, fmt.Errorf("check for an earlier outcome: %w", err), false, log)
		return
	case found:
		log.Info().Msg("trial already has an outcome; acking the redelivery without running it")
		r.settle(ctx, msg, meta, nil, false, log)
		r.releaseLease(ctx, t, log)
		cancelTicket()
		return
	case stop != nil:
		log.Info().Str("reason", stop.Reason).Msg("trial stopped on request before it started")
		r.record(ctx, msg, meta, stoppedResult(q, r.cfg.RunnerID, r.cfg.Host, nil, *stop, time.Now().UTC()), log)
		r.releaseLease(ctx, t, log)
		cancelTicket()
		return
	}

	tctx, tcancel := context.WithCancelCause(ctx)
	t.cancel = tcancel
	r.active.put(t)
	log.Info().Ints("gpus", ticket.GPUs).Msg("claimed trial")
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.active.remove(t.key)
			tcancel(nil)
			r.syncGPUHealth() // a GPU this trial left quarantined stays out
			if err := r.sched.Finish(ticket, time.Now()); err != nil {
				log.Error().Err(err).Msg("releasing the trial's GPUs")
			}
			signal(r.finished)
		}()
		r.runTrial(ctx, tctx, msg, meta, q, t, ticket.GPUs, log)
	}()
}
