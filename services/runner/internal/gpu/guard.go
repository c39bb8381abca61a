package gpu

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
)

// GPU hygiene. A server that stopped may leave memory on its GPUs for a
// while (a process still exiting, a leaked child); a trial launched there
// would OOM and the OOM would be recorded against its config. So after a
// server stops its GPUs are offered again only once NVML shows the memory
// released, and a GPU that does not release within the timeout is
// quarantined, with the reason, until it does. A GPU already busy when the
// runner starts (another tenant) is quarantined the same way. While NVML
// cannot be read at all (driver unloaded or being reloaded), the runner
// claims nothing new: Paused says why.

// Default guard settings.
const (
	DefaultReleaseTimeout = 30 * time.Second
	// DefaultResidue is the memory a GPU may use and still count as free:
	// the driver's own reservations and idle CUDA contexts of monitoring tools.
	DefaultResidue    = 1 << 30
	DefaultPollEvery  = 250 * time.Millisecond
	DefaultCheckEvery = 2 * time.Second
)

// GuardConfig tunes a Guard; zero values take the defaults above.
type GuardConfig struct {
	// ReleaseTimeout bounds the wait for a stopped server's memory.
	ReleaseTimeout time.Duration
	// Residue is the bytes a GPU may use and still count as released.
	Residue uint64
	// PollEvery is how often AwaitRelease reads memory.
	PollEvery time.Duration
	// CheckEvery is how often Run probes NVML and re-reads quarantined GPUs.
	CheckEvery time.Duration
	// Logger receives quarantine and pause transitions.
	Logger zerolog.Logger
}

// Guard keeps the quarantine of one runner's GPUs. It is safe for concurrent use.
type Guard struct {
	inv Inventory
	cfg GuardConfig

	mu     sync.Mutex
	q      map[int]events.QuarantinedGPU
	paused string
}

// NewGuard watches inv's GPUs.
func NewGuard(inv Inventory, cfg GuardConfig) *Guard {
	if cfg.ReleaseTimeout <= 0 {
		cfg.ReleaseTimeout = DefaultReleaseTimeout
	}
	if cfg.Residue == 0 {
		cfg.Residue = DefaultResidue
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = DefaultPollEvery
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	return &Guard{inv: inv, cfg: cfg, q: map[int]events.QuarantinedGPU{}}
}

// QuarantineBusy quarantines every GPU that already uses memory (another
// process holds it); call it once before offering GPUs. It returns them.
func (g *Guard) QuarantineBusy() []int {
	var busy []int
	for _, gp := range g.inv.GPUs() {
		used, err := g.inv.MemoryUsed(gp.Index)
		if err != nil || used <= g.cfg.Residue {
			continue
		}
		busy = append(busy, gp.Index)
		g.quarantine(gp.Index, fmt.Sprintf("%s in use when the runner started (another process holds it)", gibString(used)))
	}
	return busy
}

// AwaitRelease waits until every GPU of gpus uses at most the residue, up
// to the release timeout, and quarantines those that do not; after names
// what stopped, for the reason ("trial 7 of study s"). It returns the GPUs
// quarantined. Without NVML readings (paused) the release cannot be
// checked, so the GPUs are quarantined at once until it can.
func (g *Guard) AwaitRelease(gpus []int, after string) []int {
	if p := g.Paused(); p != "" {
		for _, i := range gpus {
			g.quarantine(i, "memory release after "+after+" not verified: NVML cannot read the GPUs")
		}
		return slices.Clone(gpus)
	}
	deadline := time.Now().Add(g.cfg.ReleaseTimeout)
	pending := slices.Clone(gpus)
	last := map[int]string{}
	for {
		pending = slices.DeleteFunc(pending, func(i int) bool {
			used, err := g.inv.MemoryUsed(i)
			switch {
			case err != nil:
				last[i] = "memory not readable (" + err.Error() + ")"
				return false
			case used > g.cfg.Residue:
				last[i] = gibString(used) + " still used"
				return false
			}
			return true
		})
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(g.cfg.PollEvery)
	}
	for _, i := range pending {
		g.quarantine(i, fmt.Sprintf("%s %s after %s stopped", last[i], g.cfg.ReleaseTimeout, after))
	}
	return pending
}

func (g *Guard) quarantine(index int, reason string) {
	uuid := ""
	if u := UUIDs(g.inv, []int{index}); len(u) == 1 {
		uuid = u[0]
	}
	g.mu.Lock()
	_, already := g.q[index]
	if !already {
		g.q[index] = events.QuarantinedGPU{Index: index, UUID: uuid, Reason: reason, Since: time.Now().UTC()}
	}
	g.mu.Unlock()
	if !already {
		g.cfg.Logger.Warn().Int("gpu", index).Str("uuid", uuid).Str("reason", reason).
			Msg("GPU quarantined: not offered to trials until NVML shows its memory released")
	}
}

// Quarantined lists the quarantined GPUs by index.
func (g *Guard) Quarantined() []events.QuarantinedGPU {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]events.QuarantinedGPU, 0, len(g.q))
	for _, q := range g.q {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b events.QuarantinedGPU) int { return a.Index - b.Index })
	return out
}

// QuarantinedIndices lists the quarantined GPU indices, ascending.
func (g *Guard) QuarantinedIndices() []int {
	qs := g.Quarantined()
	out := make([]int, len(qs))
	for i, q := range qs {
		out[i] = q.Index
	}
	return out
}

// Paused says why no new trial may be claimed now ("" when they may).
func (g *Guard) Paused() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// Run calls Check every CheckEvery until ctx is done.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Check()
		}
	}
}

// Check probes NVML (pausing or resuming claiming) and releases the
// quarantined GPUs whose memory is back under the residue.
func (g *Guard) Check() {
	if p, ok := g.inv.(Prober); ok {
		wasPaused := g.Paused() != ""
		var err error
		if wasPaused {
			err = p.Reopen()
		}
		if err == nil {
			err = p.Probe()
		}
		if err != nil {
			reason := "NVML cannot read the GPUs (" + err.Error() + "): no new trials are claimed until it can; running trials go on"
			g.mu.Lock()
			g.paused = reason
			g.mu.Unlock()
			if !wasPaused {
				g.cfg.Logger.Error().Err(err).Msg("NVML is gone (driver unloaded or reloading?): claiming no new trials; running trials go on")
			}
			return
		}
		if wasPaused {
			g.mu.Lock()
			g.paused = ""
			g.mu.Unlock()
			g.cfg.Logger.Info().Msg("NVML answers again: claiming trials")
		}
	}
	for _, q := range g.Quarantined() {
		used, err := g.inv.MemoryUsed(q.Index)
		if err != nil || used > g.cfg.Residue {
			continue
		}
		g.mu.Lock()
		delete(g.q, q.Index)
		g.mu.Unlock()
		g.cfg.Logger.Info().Int("gpu", q.Index).Str("uuid", q.UUID).Dur("quarantined_for", time.Since(q.Since)).
			Msg("GPU memory released: offered to trials again")
	}
}

func gibString(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
