package validator

import (
	"fmt"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// ErrUnknownGPU is returned (wrapped, listing the known models) for a GPU
// model name LookupGPU does not know.
var ErrUnknownGPU = study.ErrUnknownGPU

// GPUModel is a GPU as a runner's inventory reports it.
type GPUModel = study.GPUModel

// GPUModelNames lists the GPU models LookupGPU knows, sorted.
func GPUModelNames() []string { return study.GPUModelNames() }

// LookupGPU finds a GPU model by name, case-insensitively ("h100", "A100-80G").
// It returns the canonical name. Errors: ErrUnknownGPU.
func LookupGPU(name string) (string, GPUModel, error) { return study.LookupGPU(name) }

// SimulatedHost is one runner's heartbeat for a host with n GPUs of the named
// model, as `sgtune validate --gpu` feeds it to the hardware rules. Errors:
// ErrUnknownGPU, or an error for n < 1.
func SimulatedHost(model string, n int) (events.RunnerStatus, error) {
	key, m, err := LookupGPU(model)
	if err != nil {
		return events.RunnerStatus{}, err
	}
	if n < 1 {
		return events.RunnerStatus{}, fmt.Errorf("a simulated host needs at least 1 GPU, got %d", n)
	}
	st := events.RunnerStatus{Runner: "simulated", Host: strings.ToLower(key), Backend: "sim", Slots: 1}
	for i := range n {
		st.GPUs = append(st.GPUs, events.GPU{Index: i, Name: m.Name, MemoryTotalBytes: m.MemoryBytes,
			ComputeCapability: m.ComputeCapability, Simulated: true})
		st.FreeGPUs = append(st.FreeGPUs, i)
	}
	return st, nil
}
