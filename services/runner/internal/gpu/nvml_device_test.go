//go:build nvml

package gpu

import (
	"os"
	"testing"
)

// TestNVML_real_device runs only on a GPU host with SGTUNE_NVML_DEVICE_TEST=1.
func TestNVML_real_device(t *testing.T) {
	if os.Getenv("SGTUNE_NVML_DEVICE_TEST") == "" {
		t.Skip("set SGTUNE_NVML_DEVICE_TEST=1 on a GPU host")
	}
	inv, closeFn, err := OpenNVML()
	if err != nil {
		t.Fatalf("OpenNVML: %v", err)
	}
	defer closeFn()
	gs := inv.GPUs()
	if len(gs) == 0 {
		t.Fatal("no GPUs")
	}
	for _, g := range gs {
		used, err := inv.MemoryUsed(g.Index)
		t.Logf("GPU %d %q uuid=%s cc=%s total=%d used=%d (%v)", g.Index, g.Name, g.UUID, g.ComputeCapability, g.MemoryTotalBytes, used, err)
		if g.MemoryTotalBytes == 0 || g.ComputeCapability == "" || g.Name == "" {
			t.Errorf("incomplete GPU %+v", g)
		}
		if em, ok := inv.(EnergyMeter); ok {
			mj, err := em.EnergyMillijoules(g.Index)
			t.Logf("energy %d mJ (%v)", mj, err)
		}
	}
}
