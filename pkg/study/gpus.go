package study

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownGPU is returned (wrapped, listing the known models) for a GPU model
// name LookupGPU does not know.
var ErrUnknownGPU = errors.New("unknown GPU model")

// GPUModel is a GPU as NVML reports it: what a simulated inventory (the
// runner's --gpu-model, `sgtune validate --gpu`) pretends to be.
type GPUModel struct {
	// Name is what NVML reports ("NVIDIA H100 80GB HBM3").
	Name string
	// MemoryBytes is the GPU's total memory.
	MemoryBytes uint64
	// ComputeCapability is CUDA's "major.minor" ("9.0").
	ComputeCapability string
}

const gib = 1 << 30

// gpuModels are the GPU models sgtune can simulate (sglang-sim's presets carry
// the same names with their performance figures).
var gpuModels = map[string]GPUModel{
	"H100":     {Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 * gib, ComputeCapability: "9.0"},
	"H200":     {Name: "NVIDIA H200", MemoryBytes: 141 * gib, ComputeCapability: "9.0"},
	"A100-80G": {Name: "NVIDIA A100-SXM4-80GB", MemoryBytes: 80 * gib, ComputeCapability: "8.0"},
	"A100-40G": {Name: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 * gib, ComputeCapability: "8.0"},
	"L40S":     {Name: "NVIDIA L40S", MemoryBytes: 48 * gib, ComputeCapability: "8.9"},
	"A10":      {Name: "NVIDIA A10", MemoryBytes: 24 * gib, ComputeCapability: "8.6"},
	"B200":     {Name: "NVIDIA B200", MemoryBytes: 180 * gib, ComputeCapability: "10.0"},
}

var gpuAliases = map[string]string{"A100": "A100-80G", "A100-80GB": "A100-80G", "A100-40GB": "A100-40G", "H100-80G": "H100"}

// GPUModelNames lists the GPU models LookupGPU knows, sorted.
func GPUModelNames() []string {
	out := make([]string, 0, len(gpuModels))
	for k := range gpuModels {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LookupGPU finds a GPU model by name, case-insensitively ("h100", "A100-80G"),
// and returns its canonical name. Errors: ErrUnknownGPU.
func LookupGPU(name string) (string, GPUModel, error) {
	key := strings.ToUpper(strings.TrimSpace(name))
	if a, ok := gpuAliases[key]; ok {
		key = a
	}
	if m, ok := gpuModels[key]; ok {
		return key, m, nil
	}
	return "", GPUModel{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownGPU, name, strings.Join(GPUModelNames(), ", "))
}
