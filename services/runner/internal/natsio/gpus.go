package natsio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// One GPU, one runner. Several runners on one host (`sgtune up --runners
// N`, two `sgtune runner` processes, containers sharing a GPU host) must not
// schedule trials on the same GPUs: the fleet entries carry every runner's
// GPU UUIDs, and a runner whose real GPUs another live runner holds refuses
// to start, naming it. Simulated GPUs are not checked (nothing real is
// shared). The GPU health (quarantine, NVML gone) reaches the scheduler and
// the fleet entry from here too.

// ErrGPUsInUse is returned (wrapped, naming the other runner and the GPUs)
// when another live runner holds one of this runner's GPUs.
var ErrGPUsInUse = errors.New("GPUs held by another live runner")

// GPUHealth is the runner's GPU hygiene (gpu.Guard implements it).
type GPUHealth interface {
	// Quarantined lists the GPUs not to offer to trials, with the reason.
	Quarantined() []events.QuarantinedGPU
	// Paused says why no new trial may be claimed now ("" when they may).
	Paused() string
}

// checkGPUsFree returns ErrGPUsInUse when a live runner of the fleet (kv)
// holds one of this runner's real GPUs. Before this runner's entry exists
// (registered false) any such runner wins. After it, of two runners that
// registered at about the same time the one whose entry the server stored
// first keeps the GPUs: an entry's revision only grows, so one at a lower
// revision than this runner's creation was created before it, and exactly
// one of the two refuses.
func (r *Runner) checkGPUsFree(ctx context.Context, kv jetstream.KeyValue, registered bool) error {
	mine := realUUIDs(r.cfg.GPUs)
	if len(mine) == 0 {
		return nil
	}
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the fleet: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	for _, k := range keys {
		other, rev, err := natsx.GetJSON[events.RunnerStatus](ctx, kv, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // gone meanwhile
		}
		if err != nil {
			return fmt.Errorf("read fleet entry %s: %w", k, err)
		}
		if other.Instance == r.cfg.Instance {
			continue
		}
		shared := sharedUUIDs(mine, realUUIDs(other.GPUs))
		if len(shared) == 0 {
			continue
		}
		if !r.entryLive(other) {
			r.log.Warn().Str("other", describeRunner(other)).Strs("gpus", shared).
				Msg("a stale fleet entry names this runner's GPUs; its runner is gone")
			continue
		}
		if registered && rev > r.fleetRev {
			continue // registered after this runner: it is the one to refuse
		}
		return fmt.Errorf("%w: %s holds %s", ErrGPUsInUse, describeRunner(other), strings.Join(shared, ", "))
	}
	return nil
}

// entryLive reports whether another runner's entry is held by a live
// process: on this host, its process is alive; elsewhere (a container on
// the same GPU host has its own host name) it was refreshed within three of
// this runner's heartbeats.
func (r *Runner) entryLive(st events.RunnerStatus) bool {
	if st.Host == r.cfg.Host && st.PID > 0 && st.PID != os.Getpid() {
		return processAlive(st.PID)
	}
	return time.Since(st.UpdatedAt) < 3*r.cfg.HeartbeatEvery+2*time.Second
}

// realUUIDs returns the UUIDs of the GPUs that are not simulated.
func realUUIDs(gpus []events.GPU) []string {
	var out []string
	for _, g := range gpus {
		if !g.Simulated && g.UUID != "" {
			out = append(out, g.UUID)
		}
	}
	return out
}

func sharedUUIDs(a, b []string) []string {
	var out []string
	for _, u := range a {
		if slices.Contains(b, u) {
			out = append(out, u)
		}
	}
	return out
}

// recheckGPUs runs the GPU check again once this runner's entry exists:
// of two runners that registered together, the later one removes its
// entry and refuses.
func (r *Runner) recheckGPUs(ctx context.Context, kv jetstream.KeyValue) error {
	err := r.checkGPUsFree(ctx, kv, true)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = kv.Delete(dctx, r.cfg.RunnerID, jetstream.LastRevision(r.fleetRev))
	}
	return err
}

// syncGPUHealth hands the quarantined GPUs to the scheduler and reports
// whether claiming is paused, logging each change of the pause once. It is
// called before each claim and before a finished trial's GPUs are released,
// so a GPU quarantined by that trial's stop is never handed out meanwhile.
func (r *Runner) syncGPUHealth() (paused bool) {
	h := r.cfg.GPUHealth
	if h == nil {
		return false
	}
	qs := h.Quarantined()
	idx := make([]int, len(qs))
	for i, q := range qs {
		idx[i] = q.Index
	}
	r.sched.Withhold(idx)
	reason := h.Paused()
	if prev, _ := r.pausedFor.Swap(reason).(string); prev != reason {
		if reason != "" {
			r.log.Error().Str("reason", reason).Msg("not claiming new trials")
		} else {
			r.log.Info().Msg("claiming trials again")
		}
	}
	return reason != ""
}

// gpuStatus fills the GPU health fields of a fleet entry.
func (r *Runner) gpuStatus(st *events.RunnerStatus) {
	st.DriverVersion, st.CUDAVersion = r.cfg.DriverVersion, r.cfg.CUDAVersion
	if h := r.cfg.GPUHealth; h != nil {
		st.Quarantined = h.Quarantined()
		st.Paused = h.Paused()
	}
}
