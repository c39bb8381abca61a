package main

import "testing"

func TestFailureStreak(t *testing.T) {
	t.Parallel()
	type outcome struct {
		trial         int
		complete      bool
		class, reason string
		old           bool // from before this run
	}
	oom := func(trial int, port string) outcome {
		return outcome{trial: trial, class: "oom", reason: "CUDA out of memory on port " + port}
	}
	tbo := func(trial int) outcome {
		return outcome{trial: trial, class: "crash", reason: "AssertionError: Two-batch overlap requires --moe-a2a-backend"}
	}
	tests := []struct {
		name         string
		limit        int
		needBaseline bool
		given        []outcome
		expected     int // index of the outcome that stops the study, -1 for none
	}{
		{name: "five alike, no baseline", limit: 5, given: []outcome{oom(1, "1"), oom(2, "22"), oom(3, "333"), oom(4, "4"), oom(5, "5")}, expected: 4},
		{name: "a success resets", limit: 3, given: []outcome{oom(1, "1"), oom(2, "2"), {trial: 3, complete: true}, oom(4, "3"), oom(5, "4")}, expected: -1},
		{name: "a different failure restarts the count", limit: 3,
			given: []outcome{oom(1, "1"), oom(2, "2"), {trial: 3, class: "crash", reason: "segfault"}, oom(4, "3"), oom(5, "4")}, expected: -1},
		{name: "same reason, other class", limit: 2, given: []outcome{{trial: 1, class: "crash", reason: "x"}, {trial: 2, class: "timeout", reason: "x"}}, expected: -1},
		{name: "limit 0 never stops", limit: 0, given: []outcome{oom(1, "1"), oom(2, "2"), oom(3, "3")}, expected: -1},
		{name: "the defaults work: a bad region is not a broken command", limit: 3, needBaseline: true,
			given: []outcome{{trial: 0, complete: true}, tbo(1), tbo(2), tbo(3), tbo(4)}, expected: -1},
		{name: "the defaults fail the same way", limit: 3, needBaseline: true,
			given: []outcome{oom(1, "1"), oom(0, "9"), oom(2, "2")}, expected: 2},
		{name: "the streak waits for the baseline's outcome", limit: 2, needBaseline: true,
			given: []outcome{oom(1, "1"), oom(2, "2"), oom(3, "3"), oom(0, "4")}, expected: 3},
		{name: "a baseline from an earlier run counts", limit: 2, needBaseline: true,
			given: []outcome{{trial: 0, class: "oom", reason: "CUDA out of memory on port 7", old: true}, oom(5, "1"), oom(6, "2")}, expected: 2},
		{name: "earlier failures do not count", limit: 2,
			given: []outcome{{trial: 1, class: "oom", reason: "x", old: true}, {trial: 2, class: "oom", reason: "x"}}, expected: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := failureStreak{limit: tc.limit, needBaseline: tc.needBaseline}
			got := -1
			for i, o := range tc.given {
				if s.observe(o.trial, o.complete, o.class, o.reason, !o.old) && got < 0 {
					got = i
				}
			}
			if got != tc.expected {
				t.Fatalf("stopped at %d, want %d", got, tc.expected)
			}
			if got >= 0 && s.reason() == "" {
				t.Fatal("no reason")
			}
		})
	}
}
