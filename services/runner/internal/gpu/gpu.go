// Package gpu tells the runner which GPUs its host has, how much memory each
// uses, and which of them trials may use: the GPUs a runner is restricted to
// (Select, VisibleDevices), and a Guard that quarantines a GPU whose memory
// was not released after its server stopped and pauses claiming while NVML
// cannot be read. The NVML implementation (go-nvml, cgo) is compiled only
// with the build tag "nvml"; the default build (CGO_ENABLED=0 friendly) has
// the simulated inventory and a stub whose Open reports ErrNVMLUnavailable.
//
// GPU indices are NVML's, which number GPUs in PCI bus order; servers are
// started with CUDA_DEVICE_ORDER=PCI_BUS_ID so that CUDA numbers them the
// same way (CUDA's default order is fastest first).
package gpu

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// ErrNVMLUnavailable is returned by OpenNVML when NVML is not compiled in or
// its library (the driver) is missing; callers fall back to a simulated inventory.
var ErrNVMLUnavailable = errors.New("gpu: NVML unavailable")

// ErrUnknownModel is returned for a simulated GPU model not in Models.
var ErrUnknownModel = errors.New("gpu: unknown GPU model")

// ErrNoSuchGPU is returned for an index the inventory does not have.
var ErrNoSuchGPU = errors.New("gpu: no such GPU")

// ErrInventoryChanged is returned by Prober.Reopen when NVML came back with
// other GPUs than the runner started with: the runner must be restarted.
var ErrInventoryChanged = errors.New("gpu: the host's GPUs changed")

// Inventory lists a host's GPUs and reads their memory use.
type Inventory interface {
	// GPUs returns the host's GPUs, ordered by index.
	GPUs() []events.GPU
	// MemoryUsed returns the bytes in use on GPU index, or ErrNoSuchGPU.
	MemoryUsed(index int) (uint64, error)
}

// HostInfo is implemented by inventories that know the driver: NVML.
type HostInfo interface {
	// DriverVersion is the NVIDIA driver's version ("550.54.15"), or "".
	DriverVersion() string
	// CUDAVersion is the CUDA version the driver supports ("12.4"), or "".
	CUDAVersion() string
}

// Prober is implemented by inventories that can lose their GPUs at run time
// (NVML, when the driver is unloaded or reloaded).
type Prober interface {
	// Probe returns an error while the GPUs cannot be read.
	Probe() error
	// Reopen re-initialises the library after Probe failed.
	Reopen() error
}

// EnergyMeter is implemented by inventories that can read cumulative GPU
// energy (NVML's total energy consumption, Volta and newer); energy per
// benchmark is the difference of two readings.
type EnergyMeter interface {
	// EnergyMillijoules returns the energy GPU index used since the driver loaded.
	EnergyMillijoules(index int) (uint64, error)
}

// Model describes a GPU model the simulated inventory can pretend to be.
type Model = study.GPUModel

// LookupModel finds a model by name, case-insensitively (pkg/study's table).
func LookupModel(name string) (string, Model, error) {
	key, m, err := study.LookupGPU(name)
	if err != nil {
		return "", Model{}, fmt.Errorf("%w: %w", ErrUnknownModel, err)
	}
	return key, m, nil
}

// Simulated is an inventory of n identical pretend GPUs with no memory in use.
type Simulated struct {
	gpus []events.GPU
}

var _ Inventory = (*Simulated)(nil)

// SimulatedUUID is the UUID of simulated GPU index.
func SimulatedUUID(index int) string { return fmt.Sprintf("GPU-sim-%08d", index) }

// NewSimulated returns n GPUs of the given model (see Models), indices 0 to n-1.
func NewSimulated(n int, model string) (*Simulated, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gpu: simulated inventory needs at least one GPU, got %d", n)
	}
	_, m, err := LookupModel(model)
	if err != nil {
		return nil, err
	}
	s := &Simulated{gpus: make([]events.GPU, n)}
	for i := range s.gpus {
		s.gpus[i] = events.GPU{
			Index: i, UUID: SimulatedUUID(i), Name: m.Name,
			MemoryTotalBytes: m.MemoryBytes, ComputeCapability: m.ComputeCapability, Simulated: true,
		}
	}
	return s, nil
}

// GPUs returns a copy of the simulated GPUs.
func (s *Simulated) GPUs() []events.GPU { return append([]events.GPU(nil), s.gpus...) }

// MemoryUsed is always 0 for a simulated GPU.
func (s *Simulated) MemoryUsed(index int) (uint64, error) {
	for _, g := range s.gpus {
		if g.Index == index {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
}

func (s *Simulated) restrict(keep []int) {
	s.gpus = keepGPUs(s.gpus, keep)
}

// keepGPUs returns the GPUs of gs whose index is in keep, in gs's order.
func keepGPUs(gs []events.GPU, keep []int) []events.GPU {
	var out []events.GPU
	for _, g := range gs {
		if slices.Contains(keep, g.Index) {
			out = append(out, g)
		}
	}
	return out
}

// Restrict narrows inv to the GPUs with the given indices (from Select or
// VisibleDevices); the indices stay the host's. Errors: ErrNoSuchGPU for an
// index inv does not have.
func Restrict(inv Inventory, keep []int) error {
	have := Indices(inv)
	for _, k := range keep {
		if !slices.Contains(have, k) {
			return fmt.Errorf("%w: %d", ErrNoSuchGPU, k)
		}
	}
	r, ok := inv.(interface{ restrict([]int) })
	if !ok {
		return fmt.Errorf("gpu: %T cannot be restricted", inv)
	}
	r.restrict(keep)
	return nil
}

// UUIDs returns the UUIDs of the GPUs with the given indices, in that order
// ("" for an index inv does not have).
func UUIDs(inv Inventory, indices []int) []string {
	gs := inv.GPUs()
	out := make([]string, len(indices))
	for i, idx := range indices {
		for _, g := range gs {
			if g.Index == idx {
				out[i] = g.UUID
			}
		}
	}
	return out
}

// CUDAVersionString turns NVML's CUDA driver version (12040) into "12.4".
func CUDAVersionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// SimKey returns the simulator's GPU preset for an NVML product name
// ("NVIDIA H100 80GB HBM3" -> "H100"), or "" when sgtune knows no such GPU.
func SimKey(name string) string {
	for _, k := range study.GPUModelNames() {
		if _, m, err := study.LookupGPU(k); err == nil && strings.EqualFold(m.Name, name) {
			return k
		}
	}
	return ""
}

// Indices returns the indices of an inventory's GPUs.
func Indices(inv Inventory) []int {
	gs := inv.GPUs()
	out := make([]int, len(gs))
	for i, g := range gs {
		out[i] = g.Index
	}
	return out
}
