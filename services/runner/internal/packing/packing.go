// Package packing decides which GPUs of a host a trial gets and which GPU
// classes (trials needing 1, 2, 4, ... GPUs) the runner may claim now. It is
// pure: no I/O, no clock, no NATS.
package packing

import (
	"errors"
	"fmt"
	"slices"
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
}

// NewAllocator manages the GPUs with the given indices.
func NewAllocator(indices []int) *Allocator {
	gpus := slices.Clone(indices)
	slices.Sort(gpus)
	gpus = slices.Compact(gpus)
	return &Allocator{gpus: gpus, inUse: map[int]bool{}}
}

// Total is the number of GPUs managed.
func (a *Allocator) Total() int { return len(a.gpus) }

// Free returns the free GPU indices, ascending.
func (a *Allocator) Free() []int {
	out := make([]int, 0, len(a.gpus))
	for _, g := range a.gpus {
		if !a.inUse[g] {
			out = append(out, g)
		}
	}
	return out
}

// FreeCount is len(Free()).
func (a *Allocator) FreeCount() int { return len(a.gpus) - len(a.inUse) }

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
