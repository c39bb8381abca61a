package runner

import (
	"errors"
	"fmt"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
)

// GPU inventory sources reported by InspectGPUs.
const (
	GPUSourceNVML      = "nvml"
	GPUSourceSimulated = "simulated"
)

// GPUReport is what `sgtune gpus` prints: the host's GPUs and where they
// were read from, plus, when asked, their usage sampled over a while.
type GPUReport struct {
	Source        string       `json:"source"`
	NVMLCompiled  bool         `json:"nvml_compiled"`
	DriverVersion string       `json:"driver_version,omitempty"`
	Note          string       `json:"note,omitempty"`
	GPUs          []events.GPU `json:"gpus"`
	Usage         *GPUUsage    `json:"usage,omitempty"`
}

// GPUUsage summarises NVML samples of every GPU of the host over Seconds.
type GPUUsage struct {
	Seconds              float64  `json:"seconds"`
	Samples              int      `json:"samples"`
	PeakMemoryBytes      uint64   `json:"peak_memory_bytes"`
	PeakMemoryTotalBytes uint64   `json:"peak_memory_total_bytes"`
	MeanUtilizationPct   *float64 `json:"mean_utilization_pct,omitempty"`
	MaxUtilizationPct    *float64 `json:"max_utilization_pct,omitempty"`
	MeanPowerWatts       *float64 `json:"mean_power_watts,omitempty"`
	MaxPowerWatts        *float64 `json:"max_power_watts,omitempty"`
	EnergyJoules         *float64 `json:"energy_joules,omitempty"`
}

// ErrNoGPUs is returned by InspectGPUs when NVML is unavailable and no
// simulated inventory was asked for.
var ErrNoGPUs = errors.New("no GPUs: NVML unavailable")

// InspectGPUs reads the host's GPUs through NVML; without NVML it returns a
// simulated inventory of simulated GPUs of model, or ErrNoGPUs when simulated
// is 0. A simulated count > 0 with NVML present still reads NVML (as the
// runner does only when SGTUNE_GPUS is 0, `sgtune gpus` always shows the real
// GPUs first). watch > 0 samples usage for that long (NVML only).
func InspectGPUs(simulated int, model string, watch time.Duration) (GPUReport, error) {
	rep := GPUReport{NVMLCompiled: gpu.NVMLCompiled}
	inv, closeFn, err := gpu.OpenNVML()
	if err != nil {
		if simulated <= 0 {
			return rep, fmt.Errorf("%w (%v); build with -tags nvml on a GPU host, or pass --gpus N for a simulated inventory", ErrNoGPUs, err)
		}
		sim, serr := gpu.NewSimulated(simulated, model)
		if serr != nil {
			return rep, serr
		}
		rep.Source, rep.GPUs = GPUSourceSimulated, sim.GPUs()
		rep.Note = "NVML unavailable (" + err.Error() + "): simulated inventory"
		return rep, nil
	}
	defer closeFn()
	rep.Source, rep.GPUs = GPUSourceNVML, inv.GPUs()
	if dv, ok := inv.(interface{ DriverVersion() string }); ok {
		rep.DriverVersion = dv.DriverVersion()
	}
	if watch > 0 {
		s, ok := inv.(gpu.Sampler)
		if !ok {
			return rep, fmt.Errorf("gpus: this inventory cannot sample usage")
		}
		start := time.Now()
		mon := gpu.StartMonitor(s, gpu.Indices(inv), 250*time.Millisecond)
		time.Sleep(watch)
		sum := mon.Stop()
		rep.Usage = usageOf(sum, time.Since(start))
		rep.GPUs = inv.GPUs()
	}
	return rep, nil
}

func usageOf(s gpu.Summary, d time.Duration) *GPUUsage {
	f := func(ok bool, v float64) *float64 {
		if !ok {
			return nil
		}
		return &v
	}
	return &GPUUsage{
		Seconds: d.Seconds(), Samples: s.Samples,
		PeakMemoryBytes: s.PeakMemoryBytes, PeakMemoryTotalBytes: s.PeakMemoryTotalBytes,
		MeanUtilizationPct: f(s.HasUtil, s.MeanUtilizationPct), MaxUtilizationPct: f(s.HasUtil, s.MaxUtilizationPct),
		MeanPowerWatts: f(s.HasPower, s.MeanPowerWatts), MaxPowerWatts: f(s.HasPower, s.MaxPowerWatts),
		EnergyJoules: f(s.HasEnergy, s.EnergyJoules),
	}
}
