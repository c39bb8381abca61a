package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner"
)

// hostSplit is how `sgtune up` shares the host's GPUs between its runners:
// each runner gets its own disjoint set, so no two servers of this host
// ever share a GPU, whether the GPUs are NVML's or simulated.
type hostSplit struct {
	simulated int // the simulated host's GPU count, 0 for NVML's GPUs
	model     string
	visible   string // the inherited CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER
	order     string
	release   time.Duration
	perRunner [][]int
}

// apply gives runner i its GPUs.
func (h hostSplit) apply(cfg *runner.Config, i int) {
	cfg.GPUs, cfg.GPUModel = h.simulated, h.model
	cfg.CUDAVisibleDevices, cfg.CUDADeviceOrder = h.visible, h.order
	cfg.GPUReleaseTimeout = h.release
	ids := make([]string, len(h.perRunner[i]))
	for k, g := range h.perRunner[i] {
		ids[k] = strconv.Itoa(g)
	}
	cfg.GPUIDs = strings.Join(ids, ",")
}

// splitHostGPUs reads the host's GPUs as the runners will (NVML, or the
// simulated host of --gpus), restricted by --gpu-ids and an inherited
// CUDA_VISIBLE_DEVICES, and splits them between --runners. Without NVML a
// real backend is refused (exit 2: it would hand real servers invented
// GPUs); --sim then simulates device_num GPUs per runner.
func splitHostGPUs(o upOptions, spec study.Spec, getenv func(string) string, stderr io.Writer) (hostSplit, error) {
	h := hostSplit{simulated: o.gpus, model: o.gpuModel, visible: getenv("CUDA_VISIBLE_DEVICES"),
		order: getenv("CUDA_DEVICE_ORDER"), release: o.gpuRelease}
	base := runner.Config{Backend: o.backend, GPUModel: o.gpuModel, GPUIDs: o.gpuIDs, GPUs: o.gpus,
		CUDAVisibleDevices: h.visible, CUDADeviceOrder: h.order}
	gpus, simulated, err := runner.HostGPUs(base)
	if errors.Is(err, runner.ErrNoNVML) && o.sim {
		h.simulated = spec.DeviceNum * o.runners
		base.GPUs = h.simulated
		say(stderr, o.quiet, "sgtune up: no NVML on this host: simulating %d %s GPUs (%d per runner; --gpus N --gpu-model M to choose)",
			h.simulated, o.gpuModel, spec.DeviceNum)
		gpus, simulated, err = runner.HostGPUs(base)
	}
	if err != nil {
		return h, &exitError{code: 2, err: err}
	}
	idx := make([]int, len(gpus))
	for i, g := range gpus {
		idx[i] = g.Index
	}
	h.perRunner, err = runner.SplitGPUs(idx, o.runners)
	if err != nil {
		return h, usageError("--runners %d: %v", o.runners, err)
	}
	source := "NVML"
	if simulated {
		source = "simulated"
	}
	parts := make([]string, len(h.perRunner))
	for i, set := range h.perRunner {
		parts[i] = fmt.Sprintf("runner %d: %s", i, joinInts(set))
	}
	say(stderr, o.quiet, "sgtune up: %d GPUs (%s, %s); %s", len(gpus), source, gpus[0].Name, strings.Join(parts, "; "))
	return h, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
