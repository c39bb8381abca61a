package packing

import "slices"

// Withholding keeps GPUs out of the scheduler's hands without forgetting
// them: a quarantined GPU (its memory was not released after a server
// stopped) is neither free nor allocatable, and trials needing more GPUs
// than the host has left are not claimed (nor reserved for) until it is
// back. A GPU withheld while a trial holds it stays withheld after the
// trial finishes.

// Withhold sets the GPUs withheld from allocation to exactly indices
// (indices the allocator does not manage are ignored).
func (a *Allocator) Withhold(indices []int) {
	clear(a.withheld)
	for _, g := range indices {
		if _, ok := slices.BinarySearch(a.gpus, g); ok {
			a.withheld[g] = true
		}
	}
}

// Withheld returns the withheld GPU indices, ascending.
func (a *Allocator) Withheld() []int {
	out := make([]int, 0, len(a.withheld))
	for _, g := range a.gpus {
		if a.withheld[g] {
			out = append(out, g)
		}
	}
	return out
}

// Usable is the number of GPUs not withheld: the largest trial that can run.
func (a *Allocator) Usable() int { return len(a.gpus) - len(a.withheld) }

// Withhold sets the GPUs the scheduler must not hand out (Allocator.Withhold).
func (s *Scheduler) Withhold(indices []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alloc.Withhold(indices)
}

// Withheld returns the withheld GPU indices, ascending.
func (s *Scheduler) Withheld() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alloc.Withheld()
}

// runnable drops from pending the classes larger than the GPUs not
// withheld: they cannot start until a GPU comes back, so they must not hold
// the others for themselves either.
func (s *Scheduler) runnable(pending map[int]bool) map[int]bool {
	usable := s.alloc.Usable()
	if usable == s.total {
		return pending
	}
	out := make(map[int]bool, len(pending))
	for n, ok := range pending {
		if n <= usable {
			out[n] = ok
		}
	}
	return out
}
