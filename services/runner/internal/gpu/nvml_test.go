//go:build nvml

package gpu

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
)

func TestOpenNVML_mock_dgxh100(t *testing.T) {
	inv, closeFn, err := openNVML(dgxh100.New())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	gs := inv.GPUs()
	if len(gs) != 8 || gs[0].ComputeCapability != "9.0" || gs[0].MemoryTotalBytes == 0 || gs[7].Index != 7 {
		t.Fatalf("GPUs = %+v", gs)
	}
	if _, err := inv.MemoryUsed(0); err != nil {
		t.Fatal(err)
	}
}
