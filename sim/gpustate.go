package sim

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

// Simulated GPU memory, utilisation and busy time for the fake NVML driver
// (sim/fakenvml). On a fake host (SGTUNE_FAKE_NVML_DIR set) a simulated
// server holds memory on the GPUs CUDA would give it, found from
// CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER exactly as CUDA numbers them
// (fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID), and writes one hold
// file per GPU, DIR/holds/gpu<index>.<pid>, that the fake driver reads:
// memory (the CUDA context while it starts, then weights, KV pool and CUDA
// graphs), utilisation (busy while requests run) and busy time. When it
// stops it writes its release time (end_ms), late when told to
// (SGTUNE_SIM_GPU_RELEASE_DELAY, for the GPUs of
// SGTUNE_SIM_GPU_RELEASE_DELAY_GPUS or all); a killed server's memory is
// released by the driver at once. The hold files stay: they are the record
// of which server held which GPU when.

// Environment variables of the fake host (shared with sim/fakenvml) and of
// the late release.
const (
	EnvFakeNVMLDir          = "SGTUNE_FAKE_NVML_DIR"
	EnvFakeNVMLGPUs         = "SGTUNE_FAKE_NVML_GPUS"
	EnvFakeNVMLModel        = "SGTUNE_FAKE_NVML_MODEL"
	EnvFakeNVMLHostID       = "SGTUNE_FAKE_NVML_HOST_ID"
	EnvCUDADeviceOrder      = "CUDA_DEVICE_ORDER"
	EnvGPUReleaseDelay      = "SGTUNE_SIM_GPU_RELEASE_DELAY"
	EnvGPUReleaseDelayGPUs  = "SGTUNE_SIM_GPU_RELEASE_DELAY_GPUS"
	contextGiB              = 0.5 // a CUDA context and NCCL buffers
	gpuStateEvery           = 100 * time.Millisecond
	fakeNVMLDefaultGPUs     = 4
	fakeNVMLMaxGPUs         = 16
	fakeNVMLDefaultModelKey = "H100"
)

// FakeGPU is one GPU of the fake NVML host.
type FakeGPU struct {
	Index int
	UUID  string
	Model model.Hardware
}

// FakeHost returns the fake NVML host the environment describes (as
// sim/fakenvml/fakenvml.c reads it), or nil when SGTUNE_FAKE_NVML_DIR is unset.
func FakeHost(getenv func(string) string) ([]FakeGPU, error) {
	if getenv(EnvFakeNVMLDir) == "" {
		return nil, nil
	}
	n := fakeNVMLDefaultGPUs
	if v := getenv(EnvFakeNVMLGPUs); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > fakeNVMLMaxGPUs {
			return nil, usageErrorf("%s=%q: want 1 to %d", EnvFakeNVMLGPUs, v, fakeNVMLMaxGPUs)
		}
	}
	spec := getenv(EnvFakeNVMLModel)
	if spec == "" {
		spec = fakeNVMLDefaultModelKey
	}
	var per []model.Hardware
	for _, k := range strings.Split(spec, ",") {
		hw, ok := model.GPUPreset(k)
		if !ok {
			return nil, usageErrorf("%s=%q: unknown GPU %q", EnvFakeNVMLModel, spec, k)
		}
		per = append(per, hw)
	}
	host := uint64(0)
	if v := getenv(EnvFakeNVMLHostID); v != "" {
		h, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return nil, usageErrorf("%s=%q: want a number", EnvFakeNVMLHostID, v)
		}
		host = h & 0xffff
	}
	out := make([]FakeGPU, n)
	for i := range out {
		out[i] = FakeGPU{Index: i, UUID: fmt.Sprintf("GPU-fa4e%04x-0000-4000-8000-%012d", host, i), Model: per[i%len(per)]}
	}
	return out, nil
}

// CUDADevices returns the fake GPUs CUDA would show a process, in CUDA's
// order: CUDA_VISIBLE_DEVICES entries are ordinals (in PCI bus order with
// CUDA_DEVICE_ORDER=PCI_BUS_ID, else fastest first, ties in bus order) or
// UUIDs (or unique prefixes); unset shows every GPU. An entry naming no GPU
// is an error, as CUDA's "invalid device ordinal".
func CUDADevices(host []FakeGPU, visible, order string) ([]FakeGPU, error) {
	ordered := slices.Clone(host)
	if order != "PCI_BUS_ID" {
		slices.SortStableFunc(ordered, func(a, b FakeGPU) int { return cmp.Compare(b.Model.BF16TFLOPS, a.Model.BF16TFLOPS) })
	}
	if strings.TrimSpace(visible) == "" {
		return ordered, nil
	}
	var out []FakeGPU
	for _, id := range strings.Split(visible, ",") {
		id = strings.TrimSpace(id)
		if n, err := strconv.Atoi(id); err == nil {
			if n < 0 || n >= len(ordered) {
				return nil, fmt.Errorf("CUDA error: invalid device ordinal (CUDA_VISIBLE_DEVICES=%s names device %d of %d)", visible, n, len(ordered))
			}
			out = append(out, ordered[n])
			continue
		}
		var match []FakeGPU
		for _, g := range host {
			if strings.HasPrefix(g.UUID, id) {
				match = append(match, g)
			}
		}
		if len(match) != 1 {
			return nil, fmt.Errorf("CUDA error: invalid device ordinal (CUDA_VISIBLE_DEVICES=%s: %q names %d GPUs)", visible, id, len(match))
		}
		out = append(out, match[0])
	}
	return out, nil
}

// gpuState writes a server's hold files.
type gpuState struct {
	s       *server
	dir     string
	gpus    []FakeGPU
	start   time.Time
	delay   time.Duration
	delayed map[int]bool

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	busyMS   int64
}

// startGPUState begins holding the server's GPUs on a fake host; it returns
// nil (and does nothing) elsewhere, and an error like CUDA's when
// CUDA_VISIBLE_DEVICES names a GPU the host lacks.
func startGPUState(getenv func(string) string, s *server) (*gpuState, error) {
	host, err := FakeHost(getenv)
	if err != nil || host == nil {
		return nil, err
	}
	devices, err := CUDADevices(host, getenv(EnvCUDADevices), getenv(EnvCUDADeviceOrder))
	if err != nil {
		return nil, err
	}
	need := 1
	if s.plan != nil {
		need = max(s.plan.GPUsNeeded, 1)
	}
	if len(devices) > need {
		devices = devices[:need] // SGLang uses the first tp*pp*dp visible GPUs
	}
	g := &gpuState{s: s, dir: filepath.Join(getenv(EnvFakeNVMLDir), "holds"), gpus: devices, start: time.Now(),
		delayed: map[int]bool{}, done: make(chan struct{})}
	if v := getenv(EnvGPUReleaseDelay); v != "" {
		if g.delay, err = time.ParseDuration(v); err != nil || g.delay < 0 {
			return nil, usageErrorf("%s=%q: want a duration", EnvGPUReleaseDelay, v)
		}
		only := getenv(EnvGPUReleaseDelayGPUs)
		for _, d := range devices {
			g.delayed[d.Index] = only == "" || slices.ContainsFunc(strings.Split(only, ","), func(id string) bool {
				id = strings.TrimSpace(id)
				return id == strconv.Itoa(d.Index) || (id != "" && strings.HasPrefix(d.UUID, id))
			})
		}
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("fake NVML state: %w", err)
	}
	g.write(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go g.loop(ctx)
	return g, nil
}

func (g *gpuState) loop(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(gpuStateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.write(time.Time{})
		}
	}
}

// memoryGiB is what the server holds per GPU now: its CUDA context while
// it starts, everything once its schedulers run.
func (g *gpuState) memoryGiB(hw model.Hardware) float64 {
	p := g.s.plan
	if p == nil || g.s.reps() == nil {
		return contextGiB
	}
	return min(contextGiB+p.WeightGB+p.KVPoolGB+p.GraphGB, hw.MemoryGB)
}

// write records the holds; end is the release time once stopped (zero while running).
func (g *gpuState) write(end time.Time) {
	running := false
	for _, rep := range g.s.reps() {
		running = running || rep.running.Load() > 0
	}
	util := 0
	if running && end.IsZero() {
		util = 100
		g.busyMS += gpuStateEvery.Milliseconds()
	}
	for _, d := range g.gpus {
		endMS := int64(0)
		if !end.IsZero() {
			endMS = end.UnixMilli()
			if g.delayed[d.Index] {
				endMS = end.Add(g.delay).UnixMilli()
			}
		}
		body := fmt.Sprintf("mem_bytes %d\nutil_pct %d\nbusy_ms %d\nstart_ms %d\nend_ms %d\n",
			int64(g.memoryGiB(d.Model)*(1<<30)), util, g.busyMS, g.start.UnixMilli(), endMS)
		name := filepath.Join(g.dir, fmt.Sprintf("gpu%d.%d", d.Index, os.Getpid()))
		tmp := name + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err == nil {
			_ = os.Rename(tmp, name)
		}
	}
}

// stop ends the holds: the memory is released now, or after the delay.
func (g *gpuState) stop() {
	if g == nil {
		return
	}
	g.stopOnce.Do(func() {
		g.cancel()
		<-g.done
		g.write(time.Now())
	})
}
