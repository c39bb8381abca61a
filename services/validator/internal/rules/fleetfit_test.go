package rules

import (
	"slices"
	"strings"
	"testing"
)

func hostOf(name string, n int) Host {
	h := Host{Name: name}
	for range n {
		h.GPUs = append(h.GPUs, GPU{Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30, CCMajor: 9})
	}
	return h
}

func TestFleetFit(t *testing.T) {
	t.Parallel()
	two4 := []Host{hostOf("r1@a", 4), hostOf("r2@b", 4)}
	tests := []struct {
		name     string
		gpus     int
		fleet    []Host
		expected bool
		reason   []string
	}{
		{name: "fits the largest", gpus: 4, fleet: two4, expected: true},
		{name: "no fleet is not judged", gpus: 8, fleet: nil, expected: true},
		{name: "larger than every runner", gpus: 8, fleet: two4, expected: false,
			reason: []string{"needs 8 GPUs", "largest 4", "r1@a: 4 × NVIDIA H100 80GB HBM3", "r2@b: 4 ×"}},
		{name: "two runners do not add up", gpus: 6, fleet: []Host{hostOf("r1", 4), hostOf("r2", 2)}, expected: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rej, ok := FleetFit(tt.gpus, tt.fleet)
			if ok != tt.expected {
				t.Fatalf("FleetFit(%d) = %v, want %v (%s)", tt.gpus, ok, tt.expected, rej.Reason)
			}
			if !ok && (rej.Rule != RuleFleetFit || rej.RuleSet != SetFleet) {
				t.Fatalf("rejection %+v", rej)
			}
			for _, want := range tt.reason {
				if !strings.Contains(rej.Reason, want) {
					t.Fatalf("reason %q lacks %q", rej.Reason, want)
				}
			}
		})
	}
}

func TestUnservableClasses(t *testing.T) {
	t.Parallel()
	queued := map[int]int{1: 3, 2: 0, 4: 1, 8: 2}
	if got := UnservableClasses(queued, []Host{hostOf("r", 4)}); !slices.Equal(got, []int{8}) {
		t.Fatalf("got %v", got)
	}
	if got := UnservableClasses(queued, []Host{hostOf("r", 2)}); !slices.Equal(got, []int{4, 8}) {
		t.Fatalf("got %v", got)
	}
	if got := UnservableClasses(queued, nil); got != nil {
		t.Fatalf("empty fleet: %v", got)
	}
}
