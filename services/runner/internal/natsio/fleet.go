package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// The runner's entry in the fleet bucket (KV sgtune_fleet/<runner id>):
// what the sampler sizes the study by, the validator judges the hardware
// rules against, and `sgtune gpus` shows. Everything written there is built
// here. The entry is written with compare-and-swap and carries the runner's
// process instance, so a second process using the same runner id is
// refused (Register) and a process whose id was taken over stops
// (heartbeat).

// ErrDuplicateRunner is returned (wrapped, naming the other runner) when a
// live runner already uses this runner id.
var ErrDuplicateRunner = errors.New("runner id in use by another live runner")

// Status returns the runner's current fleet entry.
func (r *Runner) Status() events.RunnerStatus {
	st := events.RunnerStatus{
		Runner: r.cfg.RunnerID, Host: r.cfg.Host, Instance: r.cfg.Instance, PID: os.Getpid(),
		Backend: r.cfg.Backend, GPUs: r.cfg.GPUs,
		Slots: r.sched.Slots(), Busy: r.sched.Running(), FreeGPUs: r.sched.Free(),
		StartedAt: r.started, UpdatedAt: time.Now().UTC(),
	}
	st.Ready, st.NotReadyReason = r.ready()
	r.gpuStatus(&st)
	return st
}

// Register writes the runner's fleet entry, refusing to start when another
// live process holds the runner id: one on this host whose process is
// alive, or one anywhere that refreshes the entry while this runner
// watches it (within 2.5 heartbeats or until it expires). An entry left by
// a dead process is taken over. Run calls it when it was not called before.
func (r *Runner) Register(ctx context.Context) error {
	if r.started.IsZero() {
		r.started = time.Now().UTC()
	}
	kv, err := natsx.KV(ctx, r.js, events.BucketFleet)
	if err != nil {
		return err
	}
	r.fleet = kv
	// The GPUs first: a runner whose GPUs another live runner holds must
	// not even appear in the fleet (gpus.go).
	if err := r.checkGPUsFree(ctx, kv, false); err != nil {
		return err
	}
	if err := r.registerEntry(ctx, kv); err != nil {
		return err
	}
	return r.recheckGPUs(ctx, kv)
}

// registerEntry creates the fleet entry, or takes over one left by a dead
// process with the same runner id (Register).
func (r *Runner) registerEntry(ctx context.Context, kv jetstream.KeyValue) error {
	key := r.cfg.RunnerID
	var seenRev uint64
	var seenAt time.Time
	watch := 5*r.cfg.HeartbeatEvery/2 + time.Second
	for {
		data, err := json.Marshal(r.Status())
		if err != nil {
			return fmt.Errorf("encode fleet entry: %w", err)
		}
		rev, err := kv.Create(ctx, key, data)
		if err == nil {
			r.fleetRev = rev
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("register runner %s: %w", key, err)
		}
		cur, curRev, err := natsx.GetJSON[events.RunnerStatus](ctx, kv, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return fmt.Errorf("register runner %s: %w", key, err)
		}
		stale := cur.Instance == r.cfg.Instance
		switch {
		case stale:
		case cur.Host == r.cfg.Host && cur.PID > 0 && cur.PID != os.Getpid():
			if processAlive(cur.PID) {
				return fmt.Errorf("%w: %s", ErrDuplicateRunner, describeRunner(cur))
			}
			stale = true // its process on this host is gone
		case seenRev == 0:
			seenRev, seenAt = curRev, time.Now()
			r.log.Warn().Str("other", describeRunner(cur)).Dur("watching", watch).
				Msg("the runner id is registered already: waiting to see whether that runner is alive")
		case curRev != seenRev:
			return fmt.Errorf("%w: %s", ErrDuplicateRunner, describeRunner(cur))
		case time.Since(seenAt) >= watch:
			stale = true // not refreshed for 2.5 heartbeats: its runner is gone
		}
		if stale {
			if rev, err := kv.Update(ctx, key, data, curRev); err == nil {
				r.fleetRev = rev
				r.log.Info().Str("previous", describeRunner(cur)).Msg("took over the fleet entry of a runner that is gone")
				return nil
			} else if !isConflict(err) {
				return fmt.Errorf("register runner %s: %w", key, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func describeRunner(st events.RunnerStatus) string {
	return fmt.Sprintf("runner %s on host %s (pid %d, instance %s, %d GPUs, last heartbeat %s)",
		st.Runner, st.Host, st.PID, st.Instance, len(st.GPUs), st.UpdatedAt.Format(time.RFC3339))
}

// processAlive reports whether a process with that id runs on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == 10071 || apiErr.ErrorCode == 10164))
}

// heartbeat refreshes the fleet entry until ctx is done, then removes it.
// When another process took the runner id over, it calls lost and returns.
func (r *Runner) heartbeat(ctx context.Context, lost func(error)) {
	t := time.NewTicker(r.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := r.fleet.Delete(dctx, r.cfg.RunnerID, jetstream.LastRevision(r.fleetRev)); err != nil {
				r.log.Debug().Err(err).Msg("could not remove the fleet entry; it will expire")
			}
			return
		case <-t.C:
		}
		if err := r.refreshEntry(ctx); err != nil {
			if errors.Is(err, ErrDuplicateRunner) {
				r.log.Error().Err(err).Msg("another process took over this runner id: stopping")
				lost(err)
				return
			}
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("fleet heartbeat failed")
			}
		}
	}
}

// refreshEntry rewrites the fleet entry at the revision this runner wrote
// last; an entry that expired (NATS unreachable for a while) is created
// again, one another process rewrote is ErrDuplicateRunner.
func (r *Runner) refreshEntry(ctx context.Context) error {
	data, err := json.Marshal(r.Status())
	if err != nil {
		return err
	}
	rev, err := r.fleet.Update(ctx, r.cfg.RunnerID, data, r.fleetRev)
	if err == nil {
		r.fleetRev = rev
		return nil
	}
	if !isConflict(err) {
		return err
	}
	cur, curRev, gerr := natsx.GetJSON[events.RunnerStatus](ctx, r.fleet, r.cfg.RunnerID)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		rev, err := r.fleet.Create(ctx, r.cfg.RunnerID, data)
		if err != nil {
			return err
		}
		r.fleetRev = rev
		return nil
	case gerr != nil:
		return gerr
	case cur.Instance == r.cfg.Instance:
		r.fleetRev = curRev // our own write whose reply was lost
		return r.refreshEntry(ctx)
	}
	return fmt.Errorf("%w: %s", ErrDuplicateRunner, describeRunner(cur))
}
