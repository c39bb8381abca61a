package natsio

import (
	"context"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// emptyRefresh bounds how long an empty fleet is cached: while candidates
// wait for the first runner, the fleet is re-read at least this often.
const emptyRefresh = time.Second

// Fleet caches the live runners' inventories for the hardware rules,
// refreshing at most every Refresh (at most every second while no runner is
// alive). It is safe for concurrent use.
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
// last known hosts (possibly none) with the error.
func (f *Fleet) Hosts(ctx context.Context) ([]rules.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl := f.refresh
	if len(f.hosts) == 0 {
		ttl = min(ttl, emptyRefresh)
	}
	if !f.fetched.IsZero() && f.now().Sub(f.fetched) < ttl {
		return f.hosts, nil
	}
	runners, err := f.list(ctx)
	if err != nil {
		return f.hosts, err
	}
	f.hosts, f.fetched = rules.HostsOf(runners), f.now()
	return f.hosts, nil
}

// Wait returns the live hosts, waiting up to maxWait for the first runner
// when none is alive: the hardware rules never judge against an empty fleet
// (that would be guessing). It polls every poll. Errors: ErrNoLiveRunner
// when maxWait passes with no runner alive (wrapping the last read error, if
// any), or ctx's error.
func (f *Fleet) Wait(ctx context.Context, maxWait, poll time.Duration) ([]rules.Host, error) {
	deadline := f.now().Add(maxWait)
	for {
		hosts, err := f.Hosts(ctx)
		if len(hosts) > 0 {
			return hosts, nil
		}
		if !f.now().Before(deadline) {
			if err != nil {
				return nil, errorsJoin(ErrNoLiveRunner, err)
			}
			return nil, ErrNoLiveRunner
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// HostsOf maps runner inventories to the rules' hosts, one per runner.
func HostsOf(runners []events.RunnerStatus) []rules.Host { return rules.HostsOf(runners) }
