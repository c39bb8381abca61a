// Package gpu tells the runner which GPUs its host has and how much memory
// each uses. The NVML implementation (go-nvml, cgo) is compiled only with the
// build tag "nvml"; the default build (CGO_ENABLED=0 friendly) has the
// simulated inventory and a stub whose Open reports ErrNVMLUnavailable.
package gpu

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
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
type Model struct {
	Name              string
	MemoryBytes       uint64
	ComputeCapability string
}

const gib = 1 << 30

// Models maps the --gpu-model names to their properties.
var Models = map[string]Model{
	"H100":     {Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 * gib, ComputeCapability: "9.0"},
	"H200":     {Name: "NVIDIA H200", MemoryBytes: 141 * gib, ComputeCapability: "9.0"},
	"A100-80G": {Name: "NVIDIA A100-SXM4-80GB", MemoryBytes: 80 * gib, ComputeCapability: "8.0"},
	"A100-40G": {Name: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 * gib, ComputeCapability: "8.0"},
	"L40S":     {Name: "NVIDIA L40S", MemoryBytes: 48 * gib, ComputeCapability: "8.9"},
	"A10":      {Name: "NVIDIA A10", MemoryBytes: 24 * gib, ComputeCapability: "8.6"},
	"B200":     {Name: "NVIDIA B200", MemoryBytes: 180 * gib, ComputeCapability: "10.0"},
}

// aliases accept common spellings of the model names.
var aliases = map[string]string{"A100": "A100-80G", "A100-80GB": "A100-80G", "A100-40GB": "A100-40G"}

// LookupModel finds a model by name, case-insensitively.
func LookupModel(name string) (string, Model, error) {
	key := strings.ToUpper(strings.TrimSpace(name))
	if a, ok := aliases[key]; ok {
		key = a
	}
	if m, ok := Models[key]; ok {
		return key, m, nil
	}
	names := make([]string, 0, len(Models))
	for k := range Models {
		names = append(names, k)
	}
	sort.Strings(names)
	return "", Model{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, name, strings.Join(names, ", "))
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
