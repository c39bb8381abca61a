package main

import (
	"slices"
	"testing"
)

func TestPlanReservesForALargeJobThatWaited(t *testing.T) {
	one := func(queuedAt, d float64) schedJob { return schedJob{gpus: 1, queuedAt: queuedAt, duration: d} }
	eight := schedJob{gpus: 8, queuedAt: 0, duration: 100}
	// 4 GPUs busy until t=50 (two jobs of 2), 4 free, now t=10.
	running := []schedRunning{{2, 30}, {2, 50}}
	for _, tc := range []struct {
		name         string
		queue        []schedJob
		reserveAfter float64
		want         []int
	}{
		{"first fit before the delay", []schedJob{eight, one(5, 100), one(5, 100)}, 20, []int{1, 2}},
		{"after the delay only what ends before the shadow", []schedJob{eight, one(5, 100), one(5, 30), one(5, 40)}, 5, []int{2, 3}},
		{"a job past the shadow time needs spare GPUs", []schedJob{eight, one(5, 45)}, 5, nil},
		{"jobs ahead of the large one start first and count", []schedJob{one(5, 100), eight, one(5, 101), one(5, 100)}, 5, []int{0, 3}},
		{"nothing blocked: every job that fits", []schedJob{one(5, 100), one(5, 100)}, 0, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan(tc.queue, running, 4, 10, tc.reserveAfter); !slices.Equal(got, tc.want) {
				t.Errorf("plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShadowTime(t *testing.T) {
	at, spare := shadowTime([]schedRunning{{4, 50}, {2, 30}}, 1, 4)
	if at != 50 || spare != 3 {
		t.Errorf("shadowTime = %v, %d; want 50, 3", at, spare)
	}
}
