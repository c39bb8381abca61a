package natsio

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// Fleet caches the live runners' inventories for the hardware rules,
// refreshing at most every Refresh. It is safe for concurrent use.
type Fleet struct {
	list    func(ctx context.Context) ([]events.RunnerStatus, error)
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	hosts   []rules.Host
	fetched time.Time
}

// NewFleet reads the fleet with list (natsx.LiveRunners) at most every refresh.
func NewFleet(list func(ctx context.Context) ([]events.RunnerStatus, error), refresh time.Duration, now func() time.Time) *Fleet {
	if list == nil || now == nil {
		panic("natsio: NewFleet needs a list function and a clock")
	}
	return &Fleet{list: list, refresh: refresh, now: now}
}

// Hosts returns the live hosts. When the fleet cannot be read it returns the
// last known hosts (or none, and the hardware rules then pass) with the error.
func (f *Fleet) Hosts(ctx context.Context) ([]rules.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.fetched.IsZero() && f.now().Sub(f.fetched) < f.refresh {
		return f.hosts, nil
	}
	runners, err := f.list(ctx)
	if err != nil {
		return f.hosts, err
	}
	f.hosts, f.fetched = HostsOf(runners), f.now()
	return f.hosts, nil
}

// HostsOf maps runner inventories to the rules' hosts, one per runner.
func HostsOf(runners []events.RunnerStatus) []rules.Host {
	out := make([]rules.Host, 0, len(runners))
	for _, r := range runners {
		h := rules.Host{Name: r.Runner}
		if r.Host != "" && r.Host != r.Runner {
			h.Name = r.Runner + "@" + r.Host
		}
		for _, g := range r.GPUs {
			major, minor := parseCC(g.ComputeCapability)
			h.GPUs = append(h.GPUs, rules.GPU{Name: g.Name, MemoryBytes: g.MemoryTotalBytes, CCMajor: major, CCMinor: minor})
		}
		out = append(out, h)
	}
	return out
}

// parseCC reads "9.0" as 9, 0; anything else as unknown (0, 0).
func parseCC(s string) (int, int) {
	maj, min, _ := strings.Cut(strings.TrimSpace(s), ".")
	a, err := strconv.Atoi(maj)
	if err != nil || a < 0 {
		return 0, 0
	}
	b, _ := strconv.Atoi(min)
	return a, b
}
