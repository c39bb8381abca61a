//go:build nvml

package gpu

import (
	"fmt"
	"slices"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sgtune/sgtune/pkg/events"
)

// NVMLCompiled reports whether this binary was built with NVML support.
const NVMLCompiled = true

// NVML reads the host's real GPUs through go-nvml. It is safe for
// concurrent use; Reopen replaces the device handles after the driver came
// back (a driver reload invalidates them).
type NVML struct {
	lib nvml.Interface

	mu      sync.RWMutex
	gpus    []events.GPU        // the GPUs this runner may use, by index
	devices map[int]nvml.Device // by index
	driver  string
	cuda    string
}

var (
	_ Inventory   = (*NVML)(nil)
	_ EnergyMeter = (*NVML)(nil)
	_ Sampler     = (*NVML)(nil)
	_ HostInfo    = (*NVML)(nil)
	_ Prober      = (*NVML)(nil)
)

// OpenNVML initialises NVML and reads the inventory. Without a driver NVML's
// Init returns ERROR_LIBRARY_NOT_FOUND: that is ErrNVMLUnavailable. The
// returned func shuts NVML down.
func OpenNVML() (Inventory, func(), error) {
	return openNVML(nvml.New())
}

func openNVML(lib nvml.Interface) (Inventory, func(), error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, func() {}, fmt.Errorf("%w: init: %s", ErrNVMLUnavailable, ret.Error())
	}
	n := &NVML{lib: lib}
	gpus, devices, err := n.enumerate()
	if err != nil {
		_ = lib.Shutdown()
		return nil, func() {}, err
	}
	n.gpus, n.devices = gpus, devices
	n.driver, n.cuda = n.versions()
	return n, func() { _ = n.lib.Shutdown() }, nil
}

// enumerate reads every GPU NVML reports.
func (n *NVML) enumerate() ([]events.GPU, map[int]nvml.Device, error) {
	count, ret := n.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("gpu: nvml device count: %s", ret.Error())
	}
	var gpus []events.GPU
	devices := map[int]nvml.Device{}
	for i := range count {
		d, ret := n.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, nil, fmt.Errorf("gpu: nvml device %d: %s", i, ret.Error())
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
		if pci, ret := d.GetPciInfo(); ret == nvml.SUCCESS {
			g.PCIBusID = cString(pci.BusId[:])
		}
		gpus = append(gpus, g)
		devices[i] = d
	}
	return gpus, devices, nil
}

func (n *NVML) versions() (driver, cuda string) {
	if v, ret := n.lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		driver = v
	}
	if v, ret := n.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS && v > 0 {
		cuda = CUDAVersionString(v)
	}
	return driver, cuda
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

func (n *NVML) restrict(keep []int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gpus = keepGPUs(n.gpus, keep)
	for i := range n.devices {
		if !slices.Contains(keep, i) {
			delete(n.devices, i)
		}
	}
}

func (n *NVML) device(index int) (nvml.Device, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	d, ok := n.devices[index]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoSuchGPU, index)
	}
	return d, nil
}

// GPUs returns the GPUs read at open time, with memory use refreshed.
func (n *NVML) GPUs() []events.GPU {
	n.mu.RLock()
	out := append([]events.GPU(nil), n.gpus...)
	n.mu.RUnlock()
	for i := range out {
		if used, err := n.MemoryUsed(out[i].Index); err == nil {
			out[i].MemoryUsedBytes = used
		}
	}
	return out
}

// MemoryUsed reads the GPU's used memory in bytes.
func (n *NVML) MemoryUsed(index int) (uint64, error) {
	d, err := n.device(index)
	if err != nil {
		return 0, err
	}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("gpu: nvml memory of %d: %s", index, ret.Error())
	}
	return mem.Used, nil
}

// EnergyMillijoules reads the GPU's total energy since the driver loaded.
func (n *NVML) EnergyMillijoules(index int) (uint64, error) {
	d, err := n.device(index)
	if err != nil {
		return 0, err
	}
	e, ret := d.GetTotalEnergyConsumption()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("gpu: nvml energy of %d: %s", index, ret.Error())
	}
	return e, nil
}

// Sample reads memory use, power, utilisation and the energy counter of GPU
// index. Memory must be readable; the others are optional (ERROR_NOT_SUPPORTED
// on some products, utilisation on MIG) and flagged in the Reading.
func (n *NVML) Sample(index int) (Reading, error) {
	d, err := n.device(index)
	if err != nil {
		return Reading{}, err
	}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Reading{}, fmt.Errorf("gpu: nvml memory of %d: %s", index, ret.Error())
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
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.driver
}

// CUDAVersion returns the CUDA version the driver supports ("12.4"), or "".
func (n *NVML) CUDAVersion() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.cuda
}

// Probe reads every GPU's memory: an error means NVML cannot be used now
// (the driver is gone or being reloaded, or a GPU fell off the bus).
func (n *NVML) Probe() error {
	n.mu.RLock()
	idx := make([]int, 0, len(n.gpus))
	for _, g := range n.gpus {
		idx = append(idx, g.Index)
	}
	n.mu.RUnlock()
	for _, i := range idx {
		if _, err := n.MemoryUsed(i); err != nil {
			return err
		}
	}
	return nil
}

// Reopen shuts NVML down and initialises it again (after a driver reload
// the old handles are stale), then checks that the runner's GPUs are still
// there at the same indices with the same UUIDs. Errors: ErrNVMLUnavailable
// while NVML cannot be initialised, ErrInventoryChanged when the GPUs differ.
func (n *NVML) Reopen() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = n.lib.Shutdown()
	if ret := n.lib.Init(); ret != nvml.SUCCESS {
		return fmt.Errorf("%w: init: %s", ErrNVMLUnavailable, ret.Error())
	}
	gpus, devices, err := n.enumerate()
	if err != nil {
		return err
	}
	byIndex := map[int]events.GPU{}
	for _, g := range gpus {
		byIndex[g.Index] = g
	}
	for _, g := range n.gpus {
		if now, ok := byIndex[g.Index]; !ok || now.UUID != g.UUID {
			return fmt.Errorf("%w: GPU %d was %s, NVML now reports %q", ErrInventoryChanged, g.Index, g.UUID, now.UUID)
		}
	}
	for i := range devices {
		if !slices.ContainsFunc(n.gpus, func(g events.GPU) bool { return g.Index == i }) {
			delete(devices, i)
		}
	}
	n.devices = devices
	n.driver, n.cuda = n.versions()
	return nil
}
