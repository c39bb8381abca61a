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

// runTrial runs a claimed trial with InProgress heartbeats and settles its
// message: the verdict is nil once the result is stored (reference/jetstream.md
// §8 rule 6: ack only after that), an error when it must run again.
func (r *Runner) runTrial(ctx context.Context, msg jetstream.Msg, meta natsx.Meta, q events.TrialQueued, gpus []int, log zerolog.Logger) {
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
	go natsx.KeepInProgress(hbCtx, msg, r.cfg.AckWait/3, func(err error) {
		if err != nil {
			log.Warn().Err(err).Msg("in-progress heartbeat failed")
		}
		progress(events.PhaseHeartbeat, "")
	})
	progress(events.PhaseClaimed, "")

	res, err := r.exec.Run(ctx, q, gpus, progress)
	stopHB()
	if err != nil {
		r.settle(ctx, msg, meta, fmt.Errorf("trial hit an infrastructure error: %w", err), ctx.Err() != nil, log)
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	perr := natsx.PublishOnce(actx, r.js, events.OutcomeSubject(q.Study, q.Trial), res)
	switch {
	case perr == nil:
		log.Info().Str("state", res.State).Str("failure_class", res.FailureClass).Msg("result recorded")
	case errors.Is(perr, natsx.ErrAlreadyRecorded):
		log.Warn().Msg("trial already had a result (another runner finished it); acking")
	default:
		perr = fmt.Errorf("could not publish the result: %w", perr)
		r.settle(ctx, msg, meta, perr, false, log)
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
