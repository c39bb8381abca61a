package main

import "testing"

func TestFailureStreak(t *testing.T) {
	t.Parallel()
	type outcome struct {
		complete      bool
		class, reason string
	}
	oom := func(port string) outcome { return outcome{class: "oom", reason: "CUDA out of memory on port " + port} }
	tests := []struct {
		name     string
		limit    int
		given    []outcome
		expected int // index of the outcome that stops the study, -1 for none
	}{
		{name: "five alike", limit: 5, given: []outcome{oom("1"), oom("22"), oom("333"), oom("4"), oom("5")}, expected: 4},
		{name: "a success resets", limit: 3, given: []outcome{oom("1"), oom("2"), {complete: true}, oom("3"), oom("4")}, expected: -1},
		{name: "a different failure restarts the count", limit: 3,
			given: []outcome{oom("1"), oom("2"), {class: "crash", reason: "segfault"}, oom("3"), oom("4")}, expected: -1},
		{name: "same reason, other class", limit: 2, given: []outcome{{class: "crash", reason: "x"}, {class: "timeout", reason: "x"}}, expected: -1},
		{name: "limit 0 never stops", limit: 0, given: []outcome{oom("1"), oom("2"), oom("3")}, expected: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := failureStreak{limit: tc.limit}
			got := -1
			for i, o := range tc.given {
				if s.observe(o.complete, o.class, o.reason) && got < 0 {
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
