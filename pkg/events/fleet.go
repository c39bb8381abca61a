package events

import "time"

// GPU describes one GPU of a runner's host.
type GPU struct {
	Index             int    `json:"index"`
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	MemoryTotalBytes  uint64 `json:"memory_total_bytes"`
	MemoryUsedBytes   uint64 `json:"memory_used_bytes"`
	ComputeCapability string `json:"compute_capability"` // "9.0"
	Simulated         bool   `json:"simulated,omitempty"`
	// PCIBusID is NVML's bus id ("00000000:1B:00.0"); CUDA_DEVICE_ORDER=PCI_BUS_ID
	// numbers GPUs in this order, as NVML does.
	PCIBusID string `json:"pci_bus_id,omitempty"`
}

// QuarantinedGPU is a GPU its runner does not offer to trials: its memory
// was not released after a server stopped, so the next server would OOM.
// It is offered again once NVML shows the memory released.
type QuarantinedGPU struct {
	Index int    `json:"index"`
	UUID  string `json:"uuid"`
	// Reason says why, in words ("12.0 GiB still used 30s after trial 7 of study s stopped").
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// RunnerStatus is a runner's heartbeat in the sgtune_fleet bucket.
type RunnerStatus struct {
	Runner string `json:"runner"`
	Host   string `json:"host"`
	// Instance is unique per runner process (Lease.Instance); PID is its process id.
	Instance string `json:"instance,omitempty"`
	PID      int    `json:"pid,omitempty"`
	// Backend is "sglang", "sim" or "exec".
	Backend string `json:"backend"`
	GPUs    []GPU  `json:"gpus"`
	// Slots is how many trials the runner may run at once; Busy how many it runs now.
	Slots    int   `json:"slots"`
	Busy     int   `json:"busy"`
	FreeGPUs []int `json:"free_gpus"`
	// Quarantined lists the GPUs the runner will not use, with the reason
	// (memory not released after a trial, or not verifiable while NVML is
	// gone); they are not in FreeGPUs.
	Quarantined []QuarantinedGPU `json:"quarantined,omitempty"`
	// Ready is false while the runner does not claim trials because a running
	// study's model is not on its host yet (being fetched, or the fetch
	// failed); NotReadyReason then says which model and why.
	Ready          bool      `json:"ready"`
	NotReadyReason string    `json:"not_ready_reason,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	UpdatedAt      time.Time `json:"updated_at"`

	// Paused, when set, says why the runner claims no new trials now (its GPUs
	// cannot be read: NVML went away); running trials go on.
	Paused string `json:"paused,omitempty"`
	// DriverVersion and CUDAVersion are what NVML reports on the host.
	DriverVersion string `json:"driver_version,omitempty"`
	CUDAVersion   string `json:"cuda_version,omitempty"`
}

// StudyStatus values.
const (
	StudyRunning  = "running"
	StudyComplete = "complete"
)

// StudyState is a study's entry in the sgtune_studies bucket, written by the sampler.
type StudyState struct {
	Study string `json:"study"`
	// Spec is the study spec as JSON (pkg/study.Spec).
	Spec []byte `json:"spec"`
	// NTrials is the budget of benchmarked trials.
	NTrials int    `json:"n_trials"`
	Status  string `json:"status"`
	// Proposed counts proposals (trial numbers used); Benchmarked completed or failed
	// results; Rejected rejections. Outcomes = Benchmarked + Rejected.
	Proposed    int       `json:"proposed"`
	Benchmarked int       `json:"benchmarked"`
	Rejected    int       `json:"rejected"`
	StartedAt   time.Time `json:"started_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Pruned counts benchmarked trials stopped early; GPUHours the GPU time
	// the benchmarked trials held (the gpu_hours budget's use).
	Pruned   int     `json:"pruned,omitempty"`
	GPUHours float64 `json:"gpu_hours,omitempty"`
	// StopReason says why the study completed ("n_trials reached", "time budget", "plateau").
	StopReason string `json:"stop_reason,omitempty"`
}

// DeadLetter is a message no consumer could process.
type DeadLetter struct {
	Envelope
	SourceStream string `json:"source_stream"`
	Consumer     string `json:"consumer"`
	Subject      string `json:"subject"`
	StreamSeq    uint64 `json:"stream_seq"`
	Delivered    uint64 `json:"delivered"`
	Reason       string `json:"reason"`
	Data         []byte `json:"data"`
}
