package packing

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one action on a scheduler in a table test.
type step struct {
	at      time.Duration // since t0
	start   int           // start a trial of this class (0: none)
	finish  int           // finish the trial started by step #finish-1 (0: none)
	pending []int         // then Plan with these classes waiting
	want    []int         // and expect these classes
}

func TestScheduler_Plan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		gpus  int
		cfg   SchedulerConfig
		learn map[int][]time.Duration // durations seen before the steps, per class
		steps []step
	}{
		{
			name: "empty host claims the largest waiting class first",
			gpus: 8, cfg: SchedulerConfig{ReserveAfter: -1},
			steps: []step{{pending: []int{1, 2, 8}, want: []int{8, 2, 1}}},
		},
		{
			name: "reservation at once holds the GPUs for a class that does not fit",
			gpus: 4, cfg: SchedulerConfig{ReserveAfter: -1},
			steps: []step{
				{start: 2, pending: []int{1, 4}, want: nil},
				{pending: []int{1, 2}, want: []int{2, 1}},
			},
		},
		{
			name: "reservation waits ReserveAfter before holding GPUs",
			gpus: 4, cfg: SchedulerConfig{ReserveAfter: 10 * time.Second},
			steps: []step{
				{start: 2, pending: []int{1, 4}, want: []int{1}},
				{at: 5 * time.Second, pending: []int{1, 4}, want: []int{1}},
				{at: 10 * time.Second, pending: []int{1, 4}, want: nil},
			},
		},
		{
			name: "no free slot, nothing claimable",
			gpus: 4, cfg: SchedulerConfig{MaxConcurrent: 1},
			steps: []step{{start: 1, pending: []int{1, 2}, want: nil}},
		},
		{
			name: "mean backfilling: a short class ends before the shadow time",
			gpus: 4, cfg: SchedulerConfig{ReserveAfter: -1, Backfill: BackfillMean},
			learn: map[int][]time.Duration{1: {10 * time.Second}, 2: {100 * time.Second}},
			steps: []step{
				// a 2-GPU trial runs (100 s expected), 4 waits: shadow 100 s
				{start: 2, pending: []int{1, 4}, want: []int{1}},
				// 95 s later the shadow is 5 s: a 10 s trial would delay it
				{at: 95 * time.Second, pending: []int{1, 4}, want: nil},
			},
		},
		{
			name: "cost backfilling stops after MaxBackfillWait",
			gpus: 4, cfg: SchedulerConfig{ReserveAfter: -1, MaxBackfillWait: 30 * time.Second},
			learn: map[int][]time.Duration{
				1: {10 * time.Second, 10 * time.Second, 10 * time.Second},
				2: {100 * time.Second, 100 * time.Second, 100 * time.Second},
			},
			steps: []step{
				{start: 2, pending: []int{1, 4}, want: []int{1}},
				{at: 29 * time.Second, pending: []int{1, 4}, want: []int{1}},
				{at: 30 * time.Second, pending: []int{1, 4}, want: nil},
			},
		},
		{
			name: "no estimates before a trial ended: no backfilling",
			gpus: 4, cfg: SchedulerConfig{ReserveAfter: -1},
			steps: []step{{start: 2, pending: []int{1, 4}, want: nil}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewScheduler(indices(tt.gpus), tt.cfg)
			for n, ds := range tt.learn {
				for _, d := range ds {
					tk, err := s.Start(n, t0.Add(-d))
					if err != nil {
						t.Fatal(err)
					}
					if err := s.Finish(tk, t0); err != nil {
						t.Fatal(err)
					}
				}
			}
			var tickets []Ticket
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				var tk Ticket
				if st.start > 0 {
					var err error
					if tk, err = s.Start(st.start, now); err != nil {
						t.Fatalf("step %d: Start(%d): %v", i, st.start, err)
					}
				}
				tickets = append(tickets, tk)
				if st.finish > 0 {
					if err := s.Finish(tickets[st.finish-1], now); err != nil {
						t.Fatalf("step %d: Finish: %v", i, err)
					}
				}
				if st.pending == nil {
					continue
				}
				pending := map[int]bool{}
				for _, n := range st.pending {
					pending[n] = true
				}
				if got := s.Plan(pending, now); !slices.Equal(got, st.want) {
					t.Fatalf("step %d: Plan(%v) = %v, want %v", i, st.pending, got, st.want)
				}
			}
		})
	}
}

func TestScheduler_Start_Finish_keep_GPUs_disjoint(t *testing.T) {
	t.Parallel()
	s := NewScheduler(indices(4), SchedulerConfig{})
	a, err := s.Start(2, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(a.GPUs, func(g int) bool { return slices.Contains(b.GPUs, g) }) {
		t.Fatalf("overlapping GPUs %v and %v", a.GPUs, b.GPUs)
	}
	if _, err := s.Start(1, t0); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("Start on a full host: %v, want ErrNotEnough", err)
	}
	if free, slots := s.Room(); free != 0 || slots != 2 {
		t.Fatalf("Room() = %d, %d", free, slots)
	}
	if err := s.Finish(a, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(a, t0.Add(time.Minute)); !errors.Is(err, ErrNotAllocated) {
		t.Fatalf("second Finish: %v, want ErrNotAllocated", err)
	}
	if got := s.Free(); !slices.Equal(got, a.GPUs) || s.Running() != 1 {
		t.Fatalf("free %v, running %d", got, s.Running())
	}
}

func TestScheduler_Cancel_releases_without_learning(t *testing.T) {
	t.Parallel()
	s := NewScheduler(indices(2), SchedulerConfig{ReserveAfter: -1})
	tk, err := s.Start(2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(tk); err != nil {
		t.Fatal(err)
	}
	if free, _ := s.Room(); free != 2 || s.tookAll.Len() != 0 {
		t.Fatalf("free %d, durations recorded %d", free, s.tookAll.Len())
	}
	if err := s.Finish(tk, t0); !errors.Is(err, ErrNotAllocated) {
		t.Fatalf("Finish after Cancel: %v", err)
	}
}

func TestScheduler_MaxConcurrent_caps_trials(t *testing.T) {
	t.Parallel()
	s := NewScheduler(indices(4), SchedulerConfig{MaxConcurrent: 1})
	if _, err := s.Start(1, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(1, t0); !errors.Is(err, ErrNotEnough) {
		t.Fatalf("second trial with one slot: %v", err)
	}
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
