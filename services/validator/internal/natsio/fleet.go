package natsio

import (
	"context"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// Fleet caches the live runners' inventories for the hardware rules,
// refreshing at most every Refresh. An empty fleet is never cached: the
// first runners register while the study starts, and a trial judged against
// a fleet read a moment before them would pass the fit check unjudged (an
// 8-GPU trial queued for 4-GPU runners). It is safe for concurrent use.
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
	if len(f.hosts) > 0 && f.now().Sub(f.fetched) < f.refresh {
		return f.hosts, nil
	}
	return f.read(ctx)
}

// Fresh re-reads the live hosts whatever the cache holds (a rejection is
// judged against the fleet as it is now). When the fleet cannot be read it
// returns the last known hosts with the error.
func (f *Fleet) Fresh(ctx context.Context) ([]rules.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read(ctx)
}

// read lists the runners into the cache; f.mu is held.
func (f *Fleet) read(ctx context.Context) ([]rules.Host, error) {
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
