package gpu

import (
	"errors"
	"testing"
)

func TestNewSimulated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		givenModel string
		expectedCC string
		expectedGB uint64
	}{
		{"H100", "9.0", 80}, {"h200", "9.0", 141}, {"A100-80G", "8.0", 80}, {"A100-40G", "8.0", 40},
		{"L40S", "8.9", 48}, {"A10", "8.6", 24}, {"B200", "10.0", 180}, {"a100", "8.0", 80},
	}
	for _, tt := range tests {
		inv, err := NewSimulated(4, tt.givenModel)
		if err != nil {
			t.Fatalf("%s: %v", tt.givenModel, err)
		}
		gs := inv.GPUs()
		if len(gs) != 4 || gs[3].Index != 3 || !gs[0].Simulated {
			t.Fatalf("%s: GPUs = %+v", tt.givenModel, gs)
		}
		if gs[0].ComputeCapability != tt.expectedCC || gs[0].MemoryTotalBytes != tt.expectedGB<<30 {
			t.Fatalf("%s: got CC %s mem %d", tt.givenModel, gs[0].ComputeCapability, gs[0].MemoryTotalBytes)
		}
	}
	if _, err := NewSimulated(1, "V100"); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("err = %v, want ErrUnknownModel", err)
	}
	inv, _ := NewSimulated(2, "H100")
	if _, err := inv.MemoryUsed(2); !errors.Is(err, ErrNoSuchGPU) {
		t.Fatalf("err = %v, want ErrNoSuchGPU", err)
	}
}

func TestOpenNVML_falls_back(t *testing.T) {
	t.Parallel()
	// Without the nvml tag, or without a driver, NVML is unavailable: not a crash.
	inv, closeFn, err := OpenNVML()
	defer closeFn()
	if NVMLCompiled && err == nil {
		if len(inv.GPUs()) == 0 {
			t.Log("NVML present with no GPUs")
		}
		return
	}
	if !errors.Is(err, ErrNVMLUnavailable) {
		t.Fatalf("err = %v, want ErrNVMLUnavailable", err)
	}
}
