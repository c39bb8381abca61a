// Package gpu tells the runner which GPUs its host has and how much memory
// each uses. The NVML implementation (go-nvml, cgo) is compiled only with the
// build tag "nvml"; the default build (CGO_ENABLED=0 friendly) has the
// simulated inventory and a stub whose Open reports ErrNVMLUnavailable.
package gpu

import (
	"errors"
	"fmt"

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

// Inventory lists a host's GPUs and reads their memory use.
type Inventory interface {
	// GPUs returns the host's GPUs, ordered by index.
	GPUs() []events.GPU
	// MemoryUsed returns the bytes in use on GPU index, or ErrNoSuchGPU.
	MemoryUsed(index int) (uint64, error)
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

// NewSimulated returns n GPUs of the given model (see Models).
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
			Index: i, UUID: fmt.Sprintf("GPU-sim-%08d", i), Name: m.Name,
			MemoryTotalBytes: m.MemoryBytes, ComputeCapability: m.ComputeCapability, Simulated: true,
		}
	}
	return s, nil
}

// GPUs returns a copy of the simulated GPUs.
func (s *Simulated) GPUs() []events.GPU { return append([]events.GPU(nil), s.gpus...) }

// MemoryUsed is always 0 for a simulated GPU.
func (s *Simulated) MemoryUsed(index int) (uint64, error) {
	if index < 0 || index >= len(s.gpus) {
		return 0, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
	}
	return 0, nil
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
