package natsio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// runTrial runs a claimed trial with heartbeats (InProgress on its message
// and a renewal of its lease) and settles its message: the verdict is nil
// once the result is stored (reference/jetstream.md §8 rule 6: ack only
// after that), an error when it must run again. ctx is the runner's, tctx
// the trial's own (cancelled by a stop request or a lost lease).
func (r *Runner) runTrial(ctx, tctx context.Context, msg jetstream.Msg, meta natsx.Meta, q events.TrialQueued, t *activeTrial, gpus []int, log zerolog.Logger) {
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
	go natsx.KeepInProgress(hbCtx, msg, r.renewEvery(), func(err error) {
		if err != nil {
			log.Warn().Err(err).Msg("in-progress heartbeat failed")
		}
		r.renewLease(hbCtx, t, log)
		progress(events.PhaseHeartbeat, "")
	})
	progress(events.PhaseClaimed, "")

	var last lastMeasurement
	var res events.TrialResult
	var err error
	if obs, ok := r.exec.(ObservingTrialRunner); ok {
		res, err = obs.RunObserved(tctx, q, gpus, progress, func(m events.Measurement) {
			last.set(m)
			r.publishMeasurement(ctx, q, meta, gpus, m, claimedAt, log)
		})
	} else {
		res, err = r.exec.Run(tctx, q, gpus, progress)
	}
	stopHB()
	cause := context.Cause(tctx)
	var stop *StopError
	switch {
	case errors.Is(cause, errLeaseLost):
		// Another runner owns the trial now and settles its message.
		log.Error().Msg("trial abandoned: its lease belongs to another runner")
		return
	case errors.As(cause, &stop) && ctx.Err() == nil && stop.Request.EarlyStop:
		res = prunedResult(q, r.cfg.RunnerID, r.cfg.Host, gpus, stop.Request, last.get(), claimedAt.UTC())
	case errors.As(cause, &stop) && ctx.Err() == nil:
		res = stoppedResult(q, r.cfg.RunnerID, r.cfg.Host, gpus, stop.Request, claimedAt.UTC())
	case err != nil:
		r.releaseLease(ctx, t, log)
		r.settle(ctx, msg, meta, fmt.Errorf("trial hit an infrastructure error: %w", err), ctx.Err() != nil, log)
		return
	}
	r.record(ctx, msg, meta, res, log)
	r.releaseLease(ctx, t, log)
}

// record publishes a trial's one result and acks its message; a failed
// publish hands the trial back for another delivery.
func (r *Runner) record(ctx context.Context, msg jetstream.Msg, meta natsx.Meta, res events.TrialResult, log zerolog.Logger) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	perr := natsx.PublishOnce(actx, r.js, events.OutcomeSubject(res.Study, res.Trial), res)
	switch {
	case perr == nil:
		log.Info().Str("state", res.State).Str("failure_class", res.FailureClass).Msg("result recorded")
	case errors.Is(perr, natsx.ErrAlreadyRecorded):
		log.Warn().Msg("trial already had a result (another runner finished it); acking")
	default:
		r.settle(ctx, msg, meta, fmt.Errorf("could not publish the result: %w", perr), false, log)
		return
	}
	r.settle(ctx, msg, meta, nil, false, log)
}

func (r *Runner) publishProgress(ctx context.Context, q events.TrialQueued, meta natsx.Meta, gpus []int, phase, message string, n int, claimedAt time.Time, log zerolog.Logger) {
	ev := events.TrialProgress{
		Envelope: events.NewEnvelope(events.TypeTrialProgress, q.Study, q.Trial, time.Now()).In(q.Incarnation),
		Runner:   r.cfg.RunnerID, Phase: phase, GPUs: gpus, Message: message,
		Elapsed: events.Duration(time.Since(claimedAt)),
	}
	// Each progress event is distinct: the default id would be deduplicated.
	ev.ID = fmt.Sprintf("%s:%s:%d:%d", ev.ID, r.cfg.RunnerID, meta.Delivered, n)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := natsx.Publish(pctx, r.js, events.ProgressSubject(q.Study, q.Trial), ev); err != nil {
		log.Debug().Err(err).Str("phase", phase).Msg("progress not published")
	}
}

// publishMeasurement publishes what a running trial has measured so far
// (PhaseMeasured), for the sampler's early stopping.
func (r *Runner) publishMeasurement(ctx context.Context, q events.TrialQueued, meta natsx.Meta, gpus []int, m events.Measurement, claimedAt time.Time, log zerolog.Logger) {
	ev := events.TrialProgress{
		Envelope: events.NewEnvelope(events.TypeTrialProgress, q.Study, q.Trial, time.Now()).In(q.Incarnation),
		Runner:   r.cfg.RunnerID, Phase: events.PhaseMeasured, GPUs: gpus,
		Message:     fmt.Sprintf("%.0f%% measured (%d requests)", 100*m.Fraction, m.Requests),
		Elapsed:     events.Duration(time.Since(claimedAt)),
		Measurement: &m,
	}
	ev.ID = fmt.Sprintf("%s:%s:%d:m%d", ev.ID, r.cfg.RunnerID, meta.Delivered, m.Step)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := natsx.Publish(pctx, r.js, events.ProgressSubject(q.Study, q.Trial), ev); err != nil {
		log.Debug().Err(err).Int("step", m.Step).Msg("measurement not published")
	}
}
