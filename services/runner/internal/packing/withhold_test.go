package packing

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAllocator_withheld_GPUs_are_not_handed_out(t *testing.T) {
	t.Parallel()
	a := NewAllocator([]int{0, 1, 2, 3})
	a.Withhold([]int{1, 9})
	if got := a.Withheld(); !slices.Equal(got, []int{1}) {
		t.Fatalf("withheld = %v, want [1] (9 is not managed)", got)
	}
	if got := a.Free(); !slices.Equal(got, []int{0, 2, 3}) || a.FreeCount() != 3 || a.Usable() != 3 {
		t.Fatalf("free = %v (%d), usable %d", got, a.FreeCount(), a.Usable())
	}
	got, err := a.Allocate(2)
	if err != nil || !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("allocate 2 = %v, %v; want the aligned pair [2 3]", got, err)
	}
	if _, err := a.Allocate(2); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("err = %v, want ErrNotEnough (only GPU 0 is free)", err)
	}
	a.Withhold(nil)
	if got := a.Free(); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("free after release = %v", got)
	}
}

func TestScheduler_withheld_GPU_held_by_a_trial_stays_out_after_it(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := NewScheduler([]int{0, 1}, SchedulerConfig{ReserveAfter: -1})
	tk, err := s.Start(1, now)
	if err != nil || !slices.Equal(tk.GPUs, []int{0}) {
		t.Fatalf("start = %v, %v", tk.GPUs, err)
	}
	s.Withhold([]int{0}) // its memory was not released
	if err := s.Finish(tk, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := s.Free(); !slices.Equal(got, []int{1}) {
		t.Fatalf("free = %v, want [1]", got)
	}
	tests := []struct {
		name     string
		pending  map[int]bool
		expected []int
	}{
		// A 2-GPU trial cannot run with one GPU withheld: it must not hold GPU 1 for itself.
		{"larger class than usable is ignored", map[int]bool{1: true, 2: true}, []int{1}},
		{"only the unrunnable class", map[int]bool{2: true}, nil},
	}
	for _, tt := range tests {
		if got := s.Plan(tt.pending, now); !slices.Equal(got, tt.expected) {
			t.Errorf("%s: plan = %v, want %v", tt.name, got, tt.expected)
		}
	}
	s.Withhold(nil)
	if got := s.Plan(map[int]bool{1: true, 2: true}, now); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("plan after release = %v, want [2 1]", got)
	}
}
