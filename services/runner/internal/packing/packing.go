// Package packing decides which GPUs of a host a trial gets and which GPU
// classes (trials needing 1, 2, 4, ... GPUs) the runner may claim now: the
// reservation rule (Claimable) keeps large trials from starving, and
// backfilling (Reserved, ShadowTime, then Backfill on mean durations or
// BackfillByCost on the durations a History recorded) lets smaller trials
// use GPUs that drain for a reserved large trial. It is pure: no I/O, no
// clock (times are passed in), no NATS.
package packing

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNotEnough is returned by Allocate when fewer than n GPUs are free.
var ErrNotEnough = errors.New("packing: not enough free GPUs")

// ErrNotAllocated is returned by Release for a GPU that is not in use.
var ErrNotAllocated = errors.New("packing: GPU not allocated")

// Allocator hands out disjoint sets of a host's GPUs. It is not safe for
// concurrent use; the runner guards it with its own lock.
type Allocator struct {
	gpus  []int // every GPU index of the host, ascending
	inUse map[int]bool
	// withheld GPUs are not handed out (quarantine, withhold.go).
	withheld map[int]bool
}

// NewAllocator manages the GPUs with the given indices.
func NewAllocator(indices []int) *Allocator {
	gpus := slices.Clone(indices)
	slices.Sort(gpus)
	gpus = slices.Compact(gpus)
	return &Allocator{gpus: gpus, inUse: map[int]bool{}, withheld: map[int]bool{}}
}

// Total is the number of GPUs managed.
func (a *Allocator) Total() int { return len(a.gpus) }

// Free returns the free GPU indices, ascending.
func (a *Allocator) Free() []int {
	out := make([]int, 0, len(a.gpus))
	for _, g := range a.gpus {
		if !a.inUse[g] && !a.withheld[g] {
			out = append(out, g)
		}
	}
	return out
}

// FreeCount is len(Free()).
func (a *Allocator) FreeCount() int { return len(a.Free()) }

// Allocate takes n free GPUs and marks them used. It prefers, in order: an
// aligned run of consecutive indices (start divisible by n, as NVLink
// islands and NUMA halves are laid out), any run of consecutive indices,
// and then the lowest free indices. Fewer than n free returns ErrNotEnough.
func (a *Allocator) Allocate(n int) ([]int, error) {
	if n <= 0 {
		return nil, fmt.Errorf("packing: allocate %d GPUs", n)
	}
	free := a.Free()
	if len(free) < n {
		return nil, fmt.Errorf("%w: want %d, %d free", ErrNotEnough, n, len(free))
	}
	pick := bestRun(free, n)
	for _, g := range pick {
		a.inUse[g] = true
	}
	return pick, nil
}

// bestRun chooses n of the ascending free indices.
func bestRun(free []int, n int) []int {
	var firstRun []int
	for i := 0; i+n <= len(free); i++ {
		if free[i+n-1]-free[i] != n-1 {
			continue // not consecutive
		}
		run := free[i : i+n]
		if free[i]%n == 0 {
			return slices.Clone(run)
		}
		if firstRun == nil {
			firstRun = run
		}
	}
	if firstRun != nil {
		return slices.Clone(firstRun)
	}
	return slices.Clone(free[:n])
}

// Release returns GPUs taken by Allocate. Releasing a GPU that is not in use
// is a bug in the caller and returns ErrNotAllocated (the others are released).
func (a *Allocator) Release(gpus []int) error {
	var err error
	for _, g := range gpus {
		if !a.inUse[g] {
			err = fmt.Errorf("%w: %d", ErrNotAllocated, g)
			continue
		}
		delete(a.inUse, g)
	}
	return err
}

// Classes returns the GPU classes a host with total GPUs consumes: every
// count from 1 to total (powers of two are the usual ones, but tp=3 or
// tp*pp=6 trials exist too).
func Classes(total int) []int {
	out := make([]int, 0, total)
	for n := 1; n <= total; n++ {
		out = append(out, n)
	}
	return out
}

// Claimable returns the classes the runner may claim a trial of now, largest
// first, given free GPUs, the host's total, and which classes have trials
// waiting (pending[n] true). A class fits when n <= free. Reservation rule: if
// a class larger than free but no larger than total has waiting trials, no
// smaller class is claimed, so GPUs freed by finishing trials accumulate until
// the large trial fits instead of being taken by a stream of small ones.
// Classes without waiting trials are left out. slots caps how many more
// trials may start (0 means none).
func Claimable(free, total, slots int, pending map[int]bool) []int {
	if slots <= 0 || free <= 0 {
		return nil
	}
	for n := range pending {
		if pending[n] && n > free && n <= total {
			return nil // a larger trial waits for GPUs: hold them for it
		}
	}
	var out []int
	for n := min(free, total); n >= 1; n-- {
		if pending[n] {
			out = append(out, n)
		}
	}
	return out
}

// Running is a trial in progress as the backfill rule sees it.
type Running struct {
	// GPUs the trial holds.
	GPUs int
	// Remaining is its expected time left (0 when it is overdue).
	Remaining time.Duration
}

// Reserved returns the class the reservation rule holds GPUs for: the
// smallest class with waiting trials that needs more than free GPUs but no
// more than total (0 when none waits).
func Reserved(free, total int, pending map[int]bool) int {
	best := 0
	for n, ok := range pending {
		if ok && n > free && n <= total && (best == 0 || n < best) {
			best = n
		}
	}
	return best
}

// ShadowTime is how long until need GPUs are free if the running trials end
// as expected: the reserved trial's expected start. It returns 0 when free
// already suffices or when the running trials cannot free enough.
func ShadowTime(free, need int, running []Running) time.Duration {
	if free >= need {
		return 0
	}
	rs := slices.Clone(running)
	slices.SortFunc(rs, func(a, b Running) int { return cmp.Compare(a.Remaining, b.Remaining) })
	for _, r := range rs {
		free += r.GPUs
		if free >= need {
			return r.Remaining
		}
	}
	return 0
}

// Backfill returns the classes (largest first) that may start now on free
// GPUs although the reservation rule holds them for a larger trial: those
// with waiting trials whose expected duration is known (> 0) and ends before
// the shadow time, so the reserved trial starts no later than it would
// have (EASY backfilling). Durations are estimates; a trial that overruns
// shrinks the next shadow time to zero, which stops further backfilling, so
// the large trial is delayed by at most one estimate's error.
func Backfill(free int, pending map[int]bool, expected map[int]time.Duration, shadow time.Duration) []int {
	if free <= 0 || shadow <= 0 {
		return nil
	}
	var out []int
	for n := free; n >= 1; n-- {
		if d := expected[n]; pending[n] && d > 0 && d <= shadow {
			out = append(out, n)
		}
	}
	return out
}

// maxSamples bounds the durations a History keeps per class: the newest win,
// so the estimates follow a study whose trials get longer or shorter.
const maxSamples = 256

// History records how long finished trials of one GPU class took on this
// host and answers the questions backfilling asks of it. The zero value is
// empty and ready to use.
type History struct {
	took []time.Duration // oldest first, at most maxSamples
	sum  time.Duration
}

// Add records one finished trial's duration.
func (h *History) Add(d time.Duration) {
	if len(h.took) == maxSamples {
		h.sum -= h.took[0]
		h.took = slices.Delete(h.took, 0, 1)
	}
	h.took = append(h.took, d)
	h.sum += d
}

// Len is the number of durations recorded.
func (h *History) Len() int {
	if h == nil {
		return 0
	}
	return len(h.took)
}

// Mean is the mean duration (0 when empty).
func (h *History) Mean() time.Duration {
	if h.Len() == 0 {
		return 0
	}
	return h.sum / time.Duration(len(h.took))
}

// Max is the longest duration recorded (0 when empty).
func (h *History) Max() time.Duration {
	if h.Len() == 0 {
		return 0
	}
	return slices.Max(h.took)
}

// Remaining is the expected time left of a trial that has run for elapsed:
// the mean of d - elapsed over the recorded durations d longer than elapsed
// (the conditional expectation, so a trial past the mean is not taken to be
// about to end). It is 0 when the trial has outrun every recorded duration.
func (h *History) Remaining(elapsed time.Duration) time.Duration {
	var sum time.Duration
	n := 0
	for _, d := range h.tookOrNil() {
		if d > elapsed {
			sum += d - elapsed
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// Overrun is the expected time by which a trial started now would outlast
// shadow: the mean of max(d - shadow, 0) over the recorded durations.
func (h *History) Overrun(shadow time.Duration) time.Duration {
	if h.Len() == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range h.took {
		sum += max(d-shadow, 0)
	}
	return sum / time.Duration(len(h.took))
}

func (h *History) tookOrNil() []time.Duration {
	if h == nil {
		return nil
	}
	return h.took
}

// BackfillByCost returns the classes (largest first) that may start now on
// free GPUs of a host with total GPUs although the reservation rule holds
// them for a larger trial expected to start in shadow. It weighs what a
// backfilled trial of n GPUs gains, n × its expected duration of GPU work
// done on GPUs that would otherwise drain idle, against what it may cost: if
// it outlasts the shadow time, the reserved trial and the whole host wait
// for it, total × the expected overrun (History.Overrun). A class is
// backfilled when the expected cost is no more than the gain (overrun ×
// total <= n × mean), which for a short, predictable class is classic EASY
// backfilling (it ends before the shadow time) and for a wide class lets it
// use a long drain even when it may overrun a little. Classes without a
// recorded duration are not backfilled, nor is anything when shadow is 0.
// The delay this puts on the reserved trial is bounded by the caller, which
// stops backfilling once the reserved class has waited long enough.
func BackfillByCost(free, total int, pending map[int]bool, took map[int]*History, shadow time.Duration) []int {
	if free <= 0 || shadow <= 0 {
		return nil
	}
	var out []int
	for n := min(free, total); n >= 1; n-- {
		h := took[n]
		if !pending[n] || h.Len() == 0 {
			continue
		}
		if h.Overrun(shadow)*time.Duration(total) <= h.Mean()*time.Duration(n) {
			out = append(out, n)
		}
	}
	return out
}
