//go:build nvml

package gpu

import (
	"errors"
	"slices"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
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
	hi := inv.(HostInfo)
	if hi.DriverVersion() != "550.54.15" || hi.CUDAVersion() != "12.4" {
		t.Fatalf("driver %q cuda %q", hi.DriverVersion(), hi.CUDAVersion())
	}
}

func TestNVML_restrict_and_reopen(t *testing.T) {
	srv := dgxh100.New()
	inv, closeFn, err := openNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	uuids := UUIDs(inv, []int{4, 5})
	if err := Restrict(inv, []int{4, 5}); err != nil {
		t.Fatal(err)
	}
	if got := Indices(inv); !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("indices = %v", got)
	}
	if _, err := inv.MemoryUsed(0); !errors.Is(err, ErrNoSuchGPU) {
		t.Fatalf("GPU 0 outside the restriction: %v", err)
	}
	p := inv.(Prober)
	if err := p.Probe(); err != nil {
		t.Fatal(err)
	}
	if err := p.Reopen(); err != nil {
		t.Fatalf("reopen with the same GPUs: %v", err)
	}
	if got := UUIDs(inv, []int{4, 5}); !slices.Equal(got, uuids) {
		t.Fatalf("uuids after reopen = %v, want %v", got, uuids)
	}
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
	if err := p.Reopen(); !errors.Is(err, ErrNVMLUnavailable) {
		t.Fatalf("reopen without a driver: %v", err)
	}
	srv.InitFunc = func() nvml.Return { return nvml.SUCCESS }
	srv.Devices[5], srv.Devices[6] = srv.Devices[6], srv.Devices[5]
	if err := p.Reopen(); !errors.Is(err, ErrInventoryChanged) {
		t.Fatalf("reopen with other GPUs: %v", err)
	}
}
