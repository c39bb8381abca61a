package runner

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
)

// GPU inventory sources reported by InspectGPUs.
const (
	GPUSourceNVML      = "nvml"
	GPUSourceSimulated = "simulated"
)

// ErrNoGPUs is returned by InspectGPUs when NVML is unavailable and no
// simulated inventory was asked for.
var ErrNoGPUs = errors.New("no GPUs: NVML unavailable")

// ErrNoNVML is returned (wrapped with ErrInvalidConfig and what to do) by
// Run and HostGPUs when a runner that launches real servers finds no NVML
// and no simulated inventory was asked for: it must not hand real servers
// GPUs it invented.
var ErrNoNVML = errors.New("no NVML on this host")

// GPUReport is what `sgtune gpus` prints: the host's GPUs and where they
// were read from, plus, when asked, their usage sampled over a while.
type GPUReport struct {
	Source        string       `json:"source"`
	NVMLCompiled  bool         `json:"nvml_compiled"`
	DriverVersion string       `json:"driver_version,omitempty"`
	CUDAVersion   string       `json:"cuda_version,omitempty"`
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

// GPUQuery says which GPUs InspectGPUs shows: a simulated inventory when
// Simulated > 0, else NVML's GPUs, restricted like a runner's (GPUIDs, an
// inherited CUDA_VISIBLE_DEVICES).
type GPUQuery struct {
	Simulated          int
	Model              string
	GPUIDs             string
	CUDAVisibleDevices string
	CUDADeviceOrder    string
	// Watch > 0 samples usage for that long (NVML only).
	Watch time.Duration
}

// InspectGPUs reads the GPUs a runner with the same settings would use.
// Without NVML and without a simulated count it returns ErrNoGPUs, saying why.
func InspectGPUs(q GPUQuery) (GPUReport, error) {
	rep := GPUReport{NVMLCompiled: gpu.NVMLCompiled}
	cfg := Config{GPUs: q.Simulated, GPUModel: q.Model, GPUIDs: q.GPUIDs,
		CUDAVisibleDevices: q.CUDAVisibleDevices, CUDADeviceOrder: q.CUDADeviceOrder}
	if cfg.GPUModel == "" {
		cfg.GPUModel = DefaultGPUModel
	}
	inv, closeFn, err := openInventory(cfg, zerolog.Nop())
	var no *noNVMLError
	if errors.As(err, &no) {
		return rep, fmt.Errorf("%w: %s; pass --gpus N for a simulated inventory", ErrNoGPUs, no.why)
	}
	if err != nil {
		return rep, err
	}
	defer closeFn()
	rep.Source, rep.GPUs = GPUSourceNVML, inv.GPUs()
	if q.Simulated > 0 {
		rep.Source, rep.Note = GPUSourceSimulated, "simulated inventory (--gpus): no GPU of this host is read"
	}
	if hi, ok := inv.(gpu.HostInfo); ok {
		rep.DriverVersion, rep.CUDAVersion = hi.DriverVersion(), hi.CUDAVersion()
	}
	if q.Watch > 0 {
		s, ok := inv.(gpu.Sampler)
		if !ok {
			return rep, fmt.Errorf("gpus: a simulated inventory has no usage to sample (--watch needs NVML)")
		}
		start := time.Now()
		mon := gpu.StartMonitor(s, gpu.Indices(inv), 250*time.Millisecond)
		time.Sleep(q.Watch)
		sum := mon.Stop()
		rep.Usage = usageOf(sum, time.Since(start))
		rep.GPUs = inv.GPUs()
	}
	return rep, nil
}

// HostGPUs returns the GPUs a runner with cfg would use (after GPUIDs and
// CUDAVisibleDevices), and whether they are simulated: what `sgtune up
// --runners N` splits between its runners. Errors as Run's inventory
// checks (ErrNoNVML, gpu ids the host lacks, both wrapping ErrInvalidConfig).
func HostGPUs(cfg Config) ([]events.GPU, bool, error) {
	cfg.SetDefaults()
	inv, closeFn, err := openInventory(cfg, zerolog.Nop())
	if err != nil {
		return nil, false, err
	}
	defer closeFn()
	gs := inv.GPUs()
	return gs, len(gs) > 0 && gs[0].Simulated, nil
}

// openInventory picks the runner's GPUs: a simulated host when GPUs > 0;
// else NVML's GPUs; else, for the simulator only, one simulated GPU. A
// runner launching real servers without NVML is refused (ErrNoNVML). The
// inventory is then restricted to the GPUs an inherited
// CUDA_VISIBLE_DEVICES shows and to GPUIDs.
func openInventory(cfg Config, log zerolog.Logger) (gpu.Inventory, func(), error) {
	inv, closeFn, err := baseInventory(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (gpu.Inventory, func(), error) {
		closeFn()
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.CUDAVisibleDevices != "" {
		keep, err := gpu.VisibleDevices(inv.GPUs(), cfg.CUDAVisibleDevices, cfg.CUDADeviceOrder)
		if err != nil {
			return fail(err)
		}
		if err := gpu.Restrict(inv, keep); err != nil {
			return fail(err)
		}
	}
	if cfg.GPUIDs != "" {
		keep, err := gpu.Select(inv.GPUs(), cfg.GPUIDs)
		if err != nil {
			return fail(fmt.Errorf("--gpu-ids %s: %w", cfg.GPUIDs, err))
		}
		if err := gpu.Restrict(inv, keep); err != nil {
			return fail(err)
		}
	}
	return inv, closeFn, nil
}

func baseInventory(cfg Config, log zerolog.Logger) (gpu.Inventory, func(), error) {
	if cfg.GPUs > 0 {
		inv, err := gpu.NewSimulated(cfg.GPUs, cfg.GPUModel)
		return inv, func() {}, err
	}
	inv, closeFn, err := gpu.OpenNVML()
	switch {
	case err == nil && len(inv.GPUs()) == 0:
		closeFn()
		return nil, nil, fmt.Errorf("%w: NVML found no GPUs on this host; for a simulated inventory pass --gpus N (SGTUNE_GPUS)", ErrInvalidConfig)
	case err == nil:
		return inv, closeFn, nil
	case !errors.Is(err, gpu.ErrNVMLUnavailable):
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	case cfg.Sim:
		log.Info().Err(err).Msg("no NVML: the simulator runs on one simulated GPU (--gpus N for more)")
		sim, serr := gpu.NewSimulated(1, cfg.GPUModel)
		return sim, func() {}, serr
	}
	why := "the NVIDIA driver library (libnvidia-ml.so.1) could not be loaded (" + err.Error() + "): install the driver, or run the GPU image"
	if !gpu.NVMLCompiled {
		why = "this sgtune binary was built without NVML (CGO_ENABLED=0): build it with `make build` on a host with a C compiler (or `make build-nvml`)"
	}
	return nil, nil, &noNVMLError{why: why}
}

// noNVMLError is ErrNoNVML with what to do about it.
type noNVMLError struct{ why string }

func (e *noNVMLError) Error() string {
	return fmt.Sprintf("%v: %v: %s; a runner launching real servers will not invent GPUs: for a simulated inventory ask for one with --gpus N [--gpu-model MODEL] (SGTUNE_GPUS), or run the simulator with --sim",
		ErrInvalidConfig, ErrNoNVML, e.why)
}

func (e *noNVMLError) Unwrap() []error { return []error{ErrInvalidConfig, ErrNoNVML} }

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

// SplitGPUs divides GPU indices into n disjoint sets of consecutive GPUs,
// as even as possible, for n runners on one host; more runners than GPUs
// is an error.
func SplitGPUs(indices []int, n int) ([][]int, error) { return gpu.Split(indices, n) }
