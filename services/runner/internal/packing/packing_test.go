package packing

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestAllocate_prefers_aligned_contiguous(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    []int // GPUs already in use
		want     int
		expected []int
	}{
		{name: "empty host, 4", want: 4, expected: []int{0, 1, 2, 3}},
		{name: "aligned pair over unaligned", given: []int{0}, want: 2, expected: []int{2, 3}},
		{name: "aligned four", given: []int{1}, want: 4, expected: []int{4, 5, 6, 7}},
		{name: "contiguous unaligned when no aligned", given: []int{0, 3, 4, 7}, want: 2, expected: []int{1, 2}},
		{name: "scattered when no run", given: []int{1, 3, 5, 7}, want: 2, expected: []int{0, 2}},
		{name: "single takes lowest", given: []int{0, 1}, want: 1, expected: []int{2}},
		{name: "all eight", want: 8, expected: []int{0, 1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := NewAllocator([]int{0, 1, 2, 3, 4, 5, 6, 7})
			for _, g := range tt.given {
				a.inUse[g] = true
			}
			got, err := a.Allocate(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.expected) {
				t.Fatalf("Allocate(%d) = %v, want %v", tt.want, got, tt.expected)
			}
		})
	}
}

func TestAllocate_not_enough_and_release(t *testing.T) {
	t.Parallel()
	a := NewAllocator([]int{0, 1})
	g, _ := a.Allocate(2)
	if _, err := a.Allocate(1); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("err = %v, want ErrNotEnough", err)
	}
	if err := a.Release(g); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(g); !errors.Is(err, ErrNotAllocated) {
		t.Fatalf("double release err = %v", err)
	}
	if a.FreeCount() != 2 {
		t.Fatalf("free = %d", a.FreeCount())
	}
}

// No GPU is ever given to two trials, whatever the order of allocations and releases.
func TestAllocate_never_shares_a_GPU(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	a := NewAllocator([]int{0, 1, 2, 3, 4, 5, 6, 7})
	owner := map[int]int{} // gpu -> trial
	held := map[int][]int{}
	for trial := range 5000 {
		if len(held) > 0 && rng.IntN(2) == 0 {
			for id, g := range held { // release a random holder
				if err := a.Release(g); err != nil {
					t.Fatal(err)
				}
				for _, x := range g {
					delete(owner, x)
				}
				delete(held, id)
				break
			}
			continue
		}
		n := []int{1, 2, 4, 8, 3}[rng.IntN(5)]
		g, err := a.Allocate(n)
		if errors.Is(err, ErrNotEnough) {
			if a.FreeCount() >= n {
				t.Fatalf("refused %d with %d free", n, a.FreeCount())
			}
			continue
		}
		if len(g) != n {
			t.Fatalf("got %d GPUs, want %d", len(g), n)
		}
		for _, x := range g {
			if o, ok := owner[x]; ok {
				t.Fatalf("GPU %d given to trial %d while trial %d holds it", x, trial, o)
			}
			owner[x] = trial
		}
		held[trial] = g
	}
}

func TestClaimable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		givenFree    int
		givenTotal   int
		givenSlots   int
		givenPending []int
		expected     []int
	}{
		{name: "largest first", givenFree: 8, givenTotal: 8, givenSlots: 8, givenPending: []int{1, 2, 4, 8}, expected: []int{8, 4, 2, 1}},
		{name: "only fitting classes", givenFree: 3, givenTotal: 4, givenSlots: 4, givenPending: []int{1, 2}, expected: []int{2, 1}},
		{name: "reserve for a waiting large trial", givenFree: 3, givenTotal: 8, givenSlots: 4, givenPending: []int{1, 2, 4}, expected: nil},
		{name: "class beyond the host is not ours", givenFree: 3, givenTotal: 4, givenSlots: 4, givenPending: []int{1, 8}, expected: []int{1}},
		{name: "nothing pending", givenFree: 8, givenTotal: 8, givenSlots: 8, expected: nil},
		{name: "no slots", givenFree: 8, givenTotal: 8, givenSlots: 0, givenPending: []int{1}, expected: nil},
		{name: "no free GPU", givenFree: 0, givenTotal: 8, givenSlots: 3, givenPending: []int{1}, expected: nil},
		{name: "odd class fits", givenFree: 3, givenTotal: 4, givenSlots: 1, givenPending: []int{3}, expected: []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pending := map[int]bool{}
			for _, n := range tt.givenPending {
				pending[n] = true
			}
			if got := Claimable(tt.givenFree, tt.givenTotal, tt.givenSlots, pending); !slices.Equal(got, tt.expected) {
				t.Fatalf("Claimable = %v, want %v", got, tt.expected)
			}
		})
	}
}

func TestBackfill_EASY(t *testing.T) {
	t.Parallel()
	s := time.Second
	running := []Running{{GPUs: 4, Remaining: 10 * s}, {GPUs: 2, Remaining: 3 * s}, {GPUs: 1, Remaining: 0}}
	tests := []struct {
		name            string
		givenFree       int
		givenNeed       int
		givenExpected   map[int]time.Duration
		expectedShadow  time.Duration
		expectedClasses []int
	}{
		// 1 free + 1 (overdue) + 2 (in 3 s) = 4 >= 4: the 4-GPU trial starts in 3 s.
		{name: "short trial fits before the reserved start", givenFree: 1, givenNeed: 4,
			givenExpected: map[int]time.Duration{1: 2 * s}, expectedShadow: 3 * s, expectedClasses: []int{1}},
		{name: "long trial would delay it", givenFree: 1, givenNeed: 4,
			givenExpected: map[int]time.Duration{1: 5 * s}, expectedShadow: 3 * s},
		{name: "unknown duration is not backfilled", givenFree: 1, givenNeed: 4,
			givenExpected: map[int]time.Duration{}, expectedShadow: 3 * s},
		// 8 GPUs need every running trial to end: the shadow is the longest remaining time.
		{name: "whole host reserved", givenFree: 1, givenNeed: 8,
			givenExpected: map[int]time.Duration{1: 9 * s}, expectedShadow: 10 * s, expectedClasses: []int{1}},
		{name: "cannot free enough", givenFree: 0, givenNeed: 9, expectedShadow: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shadow := ShadowTime(tt.givenFree, tt.givenNeed, running)
			if shadow != tt.expectedShadow {
				t.Fatalf("shadow = %v, want %v", shadow, tt.expectedShadow)
			}
			got := Backfill(tt.givenFree, map[int]bool{1: true, tt.givenNeed: true}, tt.givenExpected, shadow)
			if !slices.Equal(got, tt.expectedClasses) {
				t.Fatalf("backfill = %v, want %v", got, tt.expectedClasses)
			}
		})
	}
	if got := Reserved(2, 8, map[int]bool{1: true, 4: true, 8: true}); got != 4 {
		t.Fatalf("Reserved = %d, want the smallest waiting class that does not fit (4)", got)
	}
}

func TestHistory_estimates(t *testing.T) {
	t.Parallel()
	s := time.Second
	var h History
	if h.Mean() != 0 || h.Max() != 0 || h.Remaining(0) != 0 || h.Overrun(0) != 0 {
		t.Fatal("an empty history estimates nothing")
	}
	for _, d := range []time.Duration{60 * s, 120 * s, 180 * s} {
		h.Add(d)
	}
	if h.Len() != 3 || h.Mean() != 120*s || h.Max() != 180*s {
		t.Fatalf("len %d mean %v max %v", h.Len(), h.Mean(), h.Max())
	}
	// Past the mean a trial is not "about to end": of the trials that ran
	// past 130 s, the one recorded ran to 180 s.
	if got := h.Remaining(130 * s); got != 50*s {
		t.Fatalf("Remaining(130s) = %v, want 50s", got)
	}
	if got := h.Remaining(30 * s); got != 90*s {
		t.Fatalf("Remaining(30s) = %v, want 90s", got)
	}
	if got := h.Remaining(200 * s); got != 0 {
		t.Fatalf("Remaining past every duration = %v, want 0", got)
	}
	// (0 + 30 + 90) / 3 = 40 s.
	if got := h.Overrun(90 * s); got != 40*s {
		t.Fatalf("Overrun(90s) = %v, want 40s", got)
	}
	for range maxSamples {
		h.Add(10 * s)
	}
	if h.Len() != maxSamples || h.Mean() != 10*s {
		t.Fatalf("the oldest durations were not dropped: len %d mean %v", h.Len(), h.Mean())
	}
}

func TestBackfillByCost(t *testing.T) {
	t.Parallel()
	s := time.Second
	hist := func(ds ...time.Duration) *History {
		h := &History{}
		for _, d := range ds {
			h.Add(d)
		}
		return h
	}
	took := map[int]*History{
		1: hist(60*s, 120*s, 180*s), // mean 120 s
		4: hist(60*s, 120*s, 180*s),
	}
	pending := map[int]bool{1: true, 4: true, 8: true}
	tests := []struct {
		name     string
		free     int
		shadow   time.Duration
		expected []int
	}{
		// Overrun(90 s) = 40 s: 40 × 8 > 120 × 1, but 40 × 8 <= 120 × 4.
		{name: "a wide class may overrun a little, a narrow one not", free: 4, shadow: 90 * s, expected: []int{4}},
		// Overrun(170 s) = 10/3 s: 8 × that <= 120 for both.
		{name: "both end before a long shadow", free: 4, shadow: 170 * s, expected: []int{4, 1}},
		{name: "only classes that fit", free: 3, shadow: 170 * s, expected: []int{1}},
		{name: "no shadow, no backfill", free: 4, shadow: 0},
		{name: "short shadow, no backfill", free: 4, shadow: 10 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := BackfillByCost(tt.free, 8, pending, took, tt.shadow); !slices.Equal(got, tt.expected) {
				t.Fatalf("BackfillByCost = %v, want %v", got, tt.expected)
			}
		})
	}
	if got := BackfillByCost(4, 8, map[int]bool{2: true, 8: true}, took, 170*s); got != nil {
		t.Fatalf("a class without recorded durations was backfilled: %v", got)
	}
}
