package natsio

import (
	"context"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// The runner's entry in the fleet bucket (KV sgtune_fleet/<runner id>):
// what the sampler sizes the study by, the validator judges the hardware
// rules against, and `sgtune gpus` shows. Everything written there is built
// here.

// Status returns the runner's current fleet entry.
func (r *Runner) Status() events.RunnerStatus {
	return events.RunnerStatus{
		Runner: r.cfg.RunnerID, Host: r.cfg.Host, Backend: r.cfg.Backend, GPUs: r.cfg.GPUs,
		Slots: r.sched.Slots(), Busy: r.sched.Running(), FreeGPUs: r.sched.Free(),
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
