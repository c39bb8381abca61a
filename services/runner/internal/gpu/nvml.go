//go:build nvml

package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sgtune/sgtune/pkg/events"
)

// NVMLCompiled reports whether this binary was built with NVML support.
const NVMLCompiled = true

// NVML reads the host's real GPUs through go-nvml.
type NVML struct {
	lib     nvml.Interface
	gpus    []events.GPU
	devices []nvml.Device
}

var (
	_ Inventory   = (*NVML)(nil)
	_ EnergyMeter = (*NVML)(nil)
	_ Sampler     = (*NVML)(nil)
)

// OpenNVML initialises NVML and reads the inventory. Without a driver NVML's
// Init returns ERROR_LIBRARY_NOT_FOUND: that is ErrNVMLUnavailable, so the
// caller can fall back. The returned func shuts NVML down.
func OpenNVML() (Inventory, func(), error) {
	return openNVML(nvml.New())
}

func openNVML(lib nvml.Interface) (Inventory, func(), error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, func() {}, fmt.Errorf("%w: init: %s", ErrNVMLUnavailable, lib.ErrorString(ret))
	}
	closeFn := func() { _ = lib.Shutdown() }
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		closeFn()
		return nil, func() {}, fmt.Errorf("gpu: nvml device count: %s", lib.ErrorString(ret))
	}
	n := &NVML{lib: lib}
	for i := range count {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			closeFn()
			return nil, func() {}, fmt.Errorf("gpu: nvml device %d: %s", i, lib.ErrorString(ret))
		}
		g := events.GPU{Index: i}
		g.Name, _ = d.GetName()
		g.UUID, _ = d.GetUUID()
		if mem, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryTotalBytes, g.MemoryUsedBytes = mem.Total, mem.Used
		}
		if major, minor, ret := d.GetCudaComputeCapability(); ret == nvml.SUCCESS {
			g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
		}
		n.gpus = append(n.gpus, g)
		n.devices = append(n.devices, d)
	}
	return n, closeFn, nil
}

// GPUs returns the GPUs read at open time, with memory use refreshed.
func (n *NVML) GPUs() []events.GPU {
	out := append([]events.GPU(nil), n.gpus...)
	for i := range out {
		if used, err := n.MemoryUsed(i); err == nil {
			out[i].MemoryUsedBytes = used
		}
	}
	return out
}

// MemoryUsed reads the GPU's used memory in bytes.
func (n *NVML) MemoryUsed(index int) (uint64, error) {
	if index < 0 || index >= len(n.devices) {
		return 0, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
	}
	mem, ret := n.devices[index].GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("gpu: nvml memory of %d: %s", index, n.lib.ErrorString(ret))
	}
	return mem.Used, nil
}

// EnergyMillijoules reads the GPU's total energy since the driver loaded.
func (n *NVML) EnergyMillijoules(index int) (uint64, error) {
	if index < 0 || index >= len(n.devices) {
		return 0, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
	}
	e, ret := n.devices[index].GetTotalEnergyConsumption()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("gpu: nvml energy of %d: %s", index, n.lib.ErrorString(ret))
	}
	return e, nil
}

// Sample reads memory use, power, utilisation and the energy counter of GPU
// index. Memory must be readable; the others are optional (ERROR_NOT_SUPPORTED
// on some products, utilisation on MIG) and flagged in the Reading.
func (n *NVML) Sample(index int) (Reading, error) {
	if index < 0 || index >= len(n.devices) {
		return Reading{}, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
	}
	d := n.devices[index]
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Reading{}, fmt.Errorf("gpu: nvml memory of %d: %s", index, n.lib.ErrorString(ret))
	}
	r := Reading{MemoryUsedBytes: mem.Used}
	if p, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
		r.PowerMilliwatts, r.HasPower = p, true
	}
	if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
		r.UtilizationPct, r.HasUtil = u.Gpu, true
	}
	if e, ret := d.GetTotalEnergyConsumption(); ret == nvml.SUCCESS {
		r.EnergyMillijoules, r.HasEnergy = e, true
	}
	return r, nil
}

// DriverVersion returns the NVIDIA driver's version, or "".
func (n *NVML) DriverVersion() string {
	v, ret := n.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return ""
	}
	return v
}
