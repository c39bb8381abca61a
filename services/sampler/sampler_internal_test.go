package sampler

import "testing"

func TestFleetCapacity(t *testing.T) {
	for _, tc := range []struct{ slots, limit, expected int }{
		{0, 0, 1}, {1, 0, 1}, {8, 0, 8}, {15, 0, 15}, {16, 0, 17}, {256, 0, 272}, {256, 100, 100}, {8, 4, 4},
	} {
		if got := fleetCapacity(tc.slots, tc.limit); got != tc.expected {
			t.Errorf("fleetCapacity(%d, %d) = %d, want %d", tc.slots, tc.limit, got, tc.expected)
		}
	}
}
