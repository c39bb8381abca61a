package study

import (
	"slices"
	"testing"
)

func TestReferencePoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		anchor   []float64
		dirs     []Direction
		expected []float64
	}{
		{"baseline ttft and tps", []float64{1.25, 3400}, []Direction{Minimize, Maximize}, []float64{2.5, 0}},
		{"negative values", []float64{-2, -3}, []Direction{Minimize, Maximize}, []float64{0, -6}},
		{"zero", []float64{0, 0}, []Direction{Minimize, Maximize}, []float64{1, -1}},
	}
	for _, tc := range tests {
		if got := ReferencePoint(tc.anchor, tc.dirs); !slices.Equal(got, tc.expected) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.expected)
		}
	}
	// Every point at least as good as the anchor lies inside the box.
	ref := ReferencePoint([]float64{1.25, 3400}, []Direction{Minimize, Maximize})
	if hv := Hypervolume([][]float64{{1.25, 3400}}, []Direction{Minimize, Maximize}, ref); hv != 1.25*3400 {
		t.Fatalf("hypervolume of the anchor %v, want %v", hv, 1.25*3400)
	}
}
