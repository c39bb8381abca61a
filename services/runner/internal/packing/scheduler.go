package packing

import (
	"fmt"
	"sync"
	"time"
)

// BackfillPolicy names a backfilling rule.
type BackfillPolicy string

const (
	// BackfillCost estimates each running trial's time left from the
	// durations seen per class given how long it has run, and backfills a
	// class when its expected GPU work outweighs the expected delay it puts
	// on the reserved trial (BackfillByCost), while the reserved class has
	// waited less than MaxBackfillWait. The default.
	BackfillCost BackfillPolicy = "cost"
	// BackfillMean is plain EASY backfilling on per-class mean durations: a
	// trial may start if its class's mean ends before the reserved trial's
	// expected start, an overdue trial counting as ending now.
	BackfillMean BackfillPolicy = "mean"
)

// SchedulerConfig tunes a Scheduler. Zero values take the defaults named.
type SchedulerConfig struct {
	// MaxConcurrent caps the trials run at once (default: the number of GPUs).
	MaxConcurrent int
	// ReserveAfter is how long trials of a class that does not fit the free
	// GPUs must have waited before the class holds GPUs for itself (the
	// reservation rule); until then smaller trials keep being claimed, so
	// GPUs drain only for a trial that did not get its GPUs in the ordinary
	// course of trials ending, and a second large trial queued meanwhile
	// shares the drain. Zero means the mean duration of the trials seen on
	// this host (at once before any ended); negative means at once.
	ReserveAfter time.Duration
	// Backfill picks how trials may start on GPUs held for a waiting larger
	// trial (default BackfillCost).
	Backfill BackfillPolicy
	// MaxBackfillWait stops backfilling once the reserved class has waited
	// this long since it could first not start, so its trial starts at most
	// this long plus the longest running trial after that. Zero means the
	// reservation delay plus the longest trial seen on this host. Only
	// BackfillCost uses it.
	MaxBackfillWait time.Duration
}

// minClassSamples is how many finished trials of a class its own duration
// estimates need; until then the durations of all classes stand in.
const minClassSamples = 3

// Scheduler is one host's GPU scheduler: which GPU classes may be claimed
// now (Plan), which GPUs a claimed trial gets (Start) and what a finished
// trial teaches about durations (Finish). It keeps the state the
// reservation and backfilling rules need: the trials running, the
// durations seen per class, and since when each class that does not fit
// has had trials waiting. Times are passed in; it does no I/O. It is safe
// for concurrent use.
type Scheduler struct {
	cfg   SchedulerConfig
	total int

	mu       sync.Mutex
	alloc    *Allocator
	inFlight map[uint64]runningTrial
	nextID   uint64
	took     map[int]*History
	tookAll  History
	blocked  map[int]time.Time
}

type runningTrial struct {
	gpus  []int
	since time.Time
}

// Ticket is a started trial's hold on its GPUs; give it back to Finish.
type Ticket struct {
	id uint64
	// GPUs are the GPU indices the trial got.
	GPUs []int
}

// NewScheduler manages the GPUs with the given indices.
func NewScheduler(indices []int, cfg SchedulerConfig) *Scheduler {
	alloc := NewAllocator(indices)
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = alloc.Total()
	}
	if cfg.Backfill == "" {
		cfg.Backfill = BackfillCost
	}
	return &Scheduler{
		cfg: cfg, total: alloc.Total(), alloc: alloc,
		inFlight: map[uint64]runningTrial{},
		took:     map[int]*History{},
		blocked:  map[int]time.Time{},
	}
}

// Total is the number of GPUs managed.
func (s *Scheduler) Total() int { return s.total }

// Room returns the free GPU count and how many more trials may start.
func (s *Scheduler) Room() (free, slots int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alloc.FreeCount(), s.cfg.MaxConcurrent - len(s.inFlight)
}

// Free returns the free GPU indices, ascending.
func (s *Scheduler) Free() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alloc.Free()
}

// Running is the number of trials started and not finished.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inFlight)
}

// Slots is the cap on trials run at once.
func (s *Scheduler) Slots() int { return s.cfg.MaxConcurrent }

// Plan returns the classes to try to claim a trial of now, in order, given
// which classes have trials waiting (pending[n]; a class that fits the free
// GPUs may be marked pending without knowing, to just try it). It applies
// the reservation rule (Claimable, once a blocked class has waited the
// reservation delay) and, when that holds the GPUs for a larger class,
// backfilling. Nothing is claimable without a free GPU and a free slot.
func (s *Scheduler) Plan(pending map[int]bool, now time.Time) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	free, slots := s.alloc.FreeCount(), s.cfg.MaxConcurrent-len(s.inFlight)
	if free == 0 || slots <= 0 {
		return nil
	}
	pending = s.runnable(pending)
	s.noteBlocked(free, pending, now)
	held := s.heldFor(pending, now)
	if classes := Claimable(free, s.total, slots, held); len(classes) > 0 {
		return classes
	}
	return s.backfill(free, held, now)
}

// Start takes GPUs for a claimed trial of class n.
func (s *Scheduler) Start(n int, now time.Time) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inFlight) >= s.cfg.MaxConcurrent {
		return Ticket{}, fmt.Errorf("%w: %d trials run already", ErrNotEnough, len(s.inFlight))
	}
	gpus, err := s.alloc.Allocate(n)
	if err != nil {
		return Ticket{}, err
	}
	id := s.nextID
	s.nextID++
	s.inFlight[id] = runningTrial{gpus: gpus, since: now}
	return Ticket{id: id, GPUs: gpus}, nil
}

// Finish releases a started trial's GPUs and records how long it took.
func (s *Scheduler) Finish(t Ticket, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.inFlight[t.id]
	if !ok {
		return fmt.Errorf("%w: ticket %d", ErrNotAllocated, t.id)
	}
	delete(s.inFlight, t.id)
	took := now.Sub(rt.since)
	n := len(rt.gpus)
	if s.took[n] == nil {
		s.took[n] = &History{}
	}
	s.took[n].Add(took)
	s.tookAll.Add(took)
	return s.alloc.Release(rt.gpus)
}

// Cancel releases the GPUs of a trial that was started but did not run
// (its lease was held elsewhere); unlike Finish it records no duration.
func (s *Scheduler) Cancel(t Ticket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.inFlight[t.id]
	if !ok {
		return fmt.Errorf("%w: ticket %d", ErrNotAllocated, t.id)
	}
	delete(s.inFlight, t.id)
	return s.alloc.Release(rt.gpus)
}

// history returns the durations that stand for class n: its own once it
// has minClassSamples, else those of every class.
func (s *Scheduler) history(n int) *History {
	if h := s.took[n]; h.Len() >= minClassSamples {
		return h
	}
	return &s.tookAll
}

// expected returns the mean duration of finished trials per class; a class
// not seen yet gets the mean over all classes (none when nothing finished).
func (s *Scheduler) expected() map[int]time.Duration {
	out := map[int]time.Duration{}
	if s.tookAll.Len() == 0 {
		return out
	}
	for n := 1; n <= s.total; n++ {
		out[n] = s.tookAll.Mean()
		if h := s.took[n]; h.Len() > 0 {
			out[n] = h.Mean()
		}
	}
	return out
}

// noteBlocked records since when each class that does not fit the free
// GPUs has had trials waiting; a class that fits is not blocked.
func (s *Scheduler) noteBlocked(free int, pending map[int]bool, now time.Time) {
	for n := 1; n <= s.total; n++ {
		switch {
		case n <= free || !pending[n]:
			delete(s.blocked, n)
		case s.blocked[n].IsZero():
			s.blocked[n] = now
		}
	}
}

// heldFor drops from pending the blocked classes that have waited less than
// the reservation delay: they do not hold GPUs yet.
func (s *Scheduler) heldFor(pending map[int]bool, now time.Time) map[int]bool {
	after := s.reserveAfter()
	if after <= 0 {
		return pending
	}
	out := make(map[int]bool, len(pending))
	for n, ok := range pending {
		if since, blocked := s.blocked[n]; ok && blocked && now.Sub(since) < after {
			continue
		}
		out[n] = ok
	}
	return out
}

// reserveAfter is ReserveAfter with its default: the mean duration of the
// trials seen on this host (0, at once, before any ended).
func (s *Scheduler) reserveAfter() time.Duration {
	switch {
	case s.cfg.ReserveAfter < 0:
		return 0
	case s.cfg.ReserveAfter > 0:
		return s.cfg.ReserveAfter
	}
	return s.tookAll.Mean()
}

func (s *Scheduler) running(remaining func(rt runningTrial) time.Duration) []Running {
	out := make([]Running, 0, len(s.inFlight))
	for _, rt := range s.inFlight {
		out = append(out, Running{GPUs: len(rt.gpus), Remaining: remaining(rt)})
	}
	return out
}

// backfill returns the classes that may be claimed although a larger class
// is reserved (Backfill or BackfillByCost), given what is running now.
func (s *Scheduler) backfill(free int, pending map[int]bool, now time.Time) []int {
	need := Reserved(free, s.total, pending)
	if need == 0 {
		return nil
	}
	if s.cfg.Backfill != BackfillMean {
		return s.backfillByCost(free, need, pending, now)
	}
	expected := s.expected()
	if len(expected) == 0 {
		return nil // nothing finished yet: no estimates
	}
	running := s.running(func(rt runningTrial) time.Duration {
		return max(expected[len(rt.gpus)]-now.Sub(rt.since), 0)
	})
	return Backfill(free, pending, expected, ShadowTime(free, need, running))
}

// backfillByCost is BackfillCost: nothing once the reserved class need has
// waited MaxBackfillWait (by default the reservation delay plus the longest
// trial seen), else the classes BackfillByCost lets start on the free GPUs
// given the shadow time, each running trial's time left being estimated
// from how long it has run (History.Remaining).
func (s *Scheduler) backfillByCost(free, need int, pending map[int]bool, now time.Time) []int {
	if s.tookAll.Len() == 0 {
		return nil // nothing finished yet: no estimates
	}
	limit := s.cfg.MaxBackfillWait
	if limit <= 0 {
		limit = s.reserveAfter() + s.tookAll.Max()
	}
	if since, ok := s.blocked[need]; ok && now.Sub(since) >= limit {
		return nil // the reserved trial has waited long enough: drain for it
	}
	running := s.running(func(rt runningTrial) time.Duration {
		return s.history(len(rt.gpus)).Remaining(now.Sub(rt.since))
	})
	hist := make(map[int]*History, s.total)
	for n := 1; n <= free; n++ {
		hist[n] = s.history(n)
	}
	return BackfillByCost(free, s.total, pending, hist, ShadowTime(free, need, running))
}
