//go:build fakenvml

// The GPU host through the real NVML code path, without a GPU: an
// NVML-enabled sgtune (SGTUNE_NVML_BIN, from make build-nvml) loads the fake
// driver (SGTUNE_FAKE_NVML_LIB, the directory of sim/fakenvml's
// libnvidia-ml.so.1) instead of NVIDIA's. The simulated servers hold memory
// on the GPUs CUDA would give them and leave hold files behind: the record
// of which server held which GPU when. Run with `make test-fake-nvml`.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// The fake host: four GPUs in PCI order A100, A100, H200, H200. CUDA's
// default order (fastest first) would number the H200s 0 and 1, so a
// server started without CUDA_DEVICE_ORDER=PCI_BUS_ID lands on other GPUs
// than its runner reserved, and the hold records show it.
const (
	fakeModels     = "A100-80G,A100-80G,H200,H200"
	lateGPU        = 2 // releases its memory late: quarantined after every server on it
	lateRelease    = 5 * time.Second
	releaseTimeout = time.Second
)

var fakeNames = []string{"NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", "NVIDIA H200", "NVIDIA H200"}

func fakeUUID(i int) string { return fmt.Sprintf("GPU-fa4e0000-0000-4000-8000-%012d", i) }

type fakeHost struct {
	bin, lib, state string
}

func newFakeHost(t *testing.T) fakeHost {
	t.Helper()
	h := fakeHost{bin: os.Getenv("SGTUNE_NVML_BIN"), lib: os.Getenv("SGTUNE_FAKE_NVML_LIB"), state: filepath.Join(t.TempDir(), "fakenvml")}
	if h.bin == "" || h.lib == "" {
		t.Fatal("SGTUNE_NVML_BIN and SGTUNE_FAKE_NVML_LIB are not set: run this test with `make test-fake-nvml`")
	}
	if _, err := os.Stat(filepath.Join(h.lib, "libnvidia-ml.so.1")); err != nil {
		t.Fatalf("the fake driver: %v", err)
	}
	return h
}

// env is the environment of a process on the fake host; NVML loads the fake driver.
func (h fakeHost) env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LD_LIBRARY_PATH" || k == "CUDA_VISIBLE_DEVICES" || k == "CUDA_DEVICE_ORDER" || strings.HasPrefix(k, "SGTUNE_FAKE_NVML_") || strings.HasPrefix(k, "SGTUNE_SIM_") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "LD_LIBRARY_PATH="+h.lib, "SGTUNE_FAKE_NVML_GPUS=4", "SGTUNE_FAKE_NVML_MODEL="+fakeModels,
		"SGTUNE_FAKE_NVML_DIR="+h.state)
	return append(out, extra...)
}

func (h fakeHost) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = env
	return cmd
}

func (h fakeHost) run(t *testing.T, ctx context.Context, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := h.command(ctx, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// hold is one server's hold on one GPU, as the simulated server recorded it.
type hold struct {
	gpu, pid   int
	start, end time.Time
	memBytes   int64
}

func readHolds(t *testing.T, state string) []hold {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(state, "holds"))
	if err != nil {
		t.Fatalf("no hold records: %v", err)
	}
	var out []hold
	for _, e := range entries {
		var h hold
		if _, err := fmt.Sscanf(e.Name(), "gpu%d.%d", &h.gpu, &h.pid); err != nil || strings.Count(e.Name(), ".") != 1 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(state, "holds", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, _ := strings.Cut(line, " ")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "start_ms":
				h.start = time.UnixMilli(n)
			case "end_ms":
				if n > 0 {
					h.end = time.UnixMilli(n)
				}
			case "mem_bytes":
				h.memBytes = max(h.memBytes, n)
			}
		}
		out = append(out, h)
	}
	return out
}

// checkNeverShared fails when two servers held one GPU at the same time.
func checkNeverShared(t *testing.T, holds []hold) map[int]int {
	t.Helper()
	byGPU := map[int][]hold{}
	for _, h := range holds {
		if h.end.IsZero() {
			t.Errorf("server %d never released GPU %d (still running, or killed)", h.pid, h.gpu)
			continue
		}
		byGPU[h.gpu] = append(byGPU[h.gpu], h)
	}
	count := map[int]int{}
	for g, hs := range byGPU {
		sort.Slice(hs, func(i, j int) bool { return hs[i].start.Before(hs[j].start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].start.Before(hs[i-1].end) {
				t.Errorf("GPU %d (%s) shared: server %d held it %s-%s, server %d from %s", g, fakeUUID(g),
					hs[i-1].pid, hs[i-1].start.Format("15:04:05.000"), hs[i-1].end.Format("15:04:05.000"),
					hs[i].pid, hs[i].start.Format("15:04:05.000"))
			}
		}
		count[g] = len(hs)
	}
	return count
}

func TestFakeNVML_inventory_and_refusals(t *testing.T) {
	h := newFakeHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, errOut, err := h.run(t, ctx, h.env(), "gpus", "--json")
	if err != nil {
		t.Fatalf("sgtune gpus: %v\n%s", err, errOut)
	}
	var rep struct {
		Source        string       `json:"source"`
		DriverVersion string       `json:"driver_version"`
		CUDAVersion   string       `json:"cuda_version"`
		GPUs          []events.GPU `json:"gpus"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != "nvml" || rep.DriverVersion != "550.54.15" || rep.CUDAVersion != "12.4" || len(rep.GPUs) != 4 {
		t.Fatalf("inventory %s", out)
	}
	for i, g := range rep.GPUs {
		if g.Name != fakeNames[i] || g.UUID != fakeUUID(i) || g.PCIBusID == "" || g.MemoryTotalBytes == 0 {
			t.Errorf("GPU %d: %+v", i, g)
		}
	}

	// A binary without NVML, and one whose driver library is missing, refuse
	// to launch real servers; both name what to do.
	dir := t.TempDir()
	plain := exec.CommandContext(ctx, sgtuneBin, "up", "--data-dir", filepath.Join(dir, "a"), "--listen", "127.0.0.1:0", "--quiet")
	var plainErr bytes.Buffer
	plain.Stderr = &plainErr
	err = plain.Run()
	if exitCodeOf(err) != 2 || !strings.Contains(plainErr.String(), "built without NVML") || !strings.Contains(plainErr.String(), "--gpus N") {
		t.Fatalf("plain binary: exit %d, %s", exitCodeOf(err), plainErr.String())
	}
	noDriver := slices.DeleteFunc(h.env(), func(kv string) bool { return strings.HasPrefix(kv, "LD_LIBRARY_PATH=") })
	_, errOut, err = h.run(t, ctx, noDriver, "runner", "--nats-url", "nats://127.0.0.1:1")
	if exitCodeOf(err) != 2 || !strings.Contains(errOut, "libnvidia-ml.so.1") {
		t.Fatalf("NVML binary without a driver: exit %d, %s", exitCodeOf(err), errOut)
	}

	// GPU ids: one the host lacks, and ones another live runner holds.
	url := startNATS(t, dir)
	_, errOut, err = h.run(t, ctx, h.env(), "runner", "--nats-url", url, "--sim", "--gpu-ids", "1,7")
	if exitCodeOf(err) != 2 || !strings.Contains(errOut, "no GPU 7") {
		t.Fatalf("--gpu-ids 1,7: exit %d, %s", exitCodeOf(err), errOut)
	}
	first := h.command(ctx, h.env(), "runner", "--nats-url", url, "--sim", "--id", "holder", "--gpu-ids", "0,1")
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Signal(syscall.SIGTERM); _ = first.Wait() }()
	js := jsClient(t, url)
	eventually(t, 30*time.Second, "the first runner's fleet entry", func() bool {
		kv, err := js.KeyValue(ctx, events.BucketFleet)
		if err != nil {
			return false
		}
		_, err = kv.Get(ctx, "holder")
		return err == nil
	})
	_, errOut, err = h.run(t, ctx, h.env(), "runner", "--nats-url", url, "--sim", "--id", "second", "--gpu-ids", fakeUUID(1)+","+fakeUUID(2))
	if exitCodeOf(err) != 2 || !strings.Contains(errOut, "runner holder") || !strings.Contains(errOut, "holds "+fakeUUID(1)) {
		t.Fatalf("overlapping --gpu-ids: exit %d, %s", exitCodeOf(err), errOut)
	}
	// An inherited CUDA_VISIBLE_DEVICES restricts a runner the same way.
	_, errOut, err = h.run(t, ctx, h.env("CUDA_VISIBLE_DEVICES=0", "CUDA_DEVICE_ORDER=PCI_BUS_ID"), "runner", "--nats-url", url, "--sim", "--id", "third")
	if exitCodeOf(err) != 2 || !strings.Contains(errOut, fakeUUID(0)) {
		t.Fatalf("CUDA_VISIBLE_DEVICES=0 with GPU 0 held: exit %d, %s", exitCodeOf(err), errOut)
	}
	out, _, err = h.run(t, ctx, h.env(), "gpus", "--nats-url", url)
	if err != nil || !strings.Contains(out, "holder") || !strings.Contains(out, "no runner") {
		t.Fatalf("sgtune gpus --nats-url: %v\n%s", err, out)
	}
}

// fakeStudySpec is a short study whose trials take one or two GPUs.
func fakeStudySpec(name string, trials, prompts, outputLen int, tpSizes string) string {
	return fmt.Sprintf(`study_name: %s
n_trials: %d
device_num: 2
rules:
  sets: [seed]
space:
  tp_size: [%s]
  chunked_prefill_size: [None, 2048, 4096]
  schedule_policy: [fcfs, lpm]
  cuda_graph_max_bs: [None, 8, 16, 32]
model:
  path: meta-llama/Llama-3.1-8B-Instruct
  startup_timeout: 60s
  compile_startup_timeout: 60s
  benchmark_timeout: 60s
  shutdown_timeout: 5s
workload:
  num_prompts: %d
  random_input_len: 128
  random_output_len: %d
  max_concurrency: 8
  warmup_requests: 1
sampler:
  startup_trials: 4
`, name, trials, tpSizes, prompts, outputLen)
}

// watchFleet polls the fleet bucket until ctx is done and keeps every
// quarantine and pause it saw.
type fleetWatch struct {
	mu          sync.Mutex
	quarantines []events.QuarantinedGPU
	paused      []string
	pausedAt    time.Time
}

func (w *fleetWatch) run(ctx context.Context, js jetstream.JetStream, onQuarantine func()) {
	for ctx.Err() == nil {
		kv, err := js.KeyValue(ctx, events.BucketFleet)
		if err == nil {
			if lister, err := kv.ListKeys(ctx); err == nil {
				for k := range lister.Keys() {
					st, _, err := natsx.GetJSON[events.RunnerStatus](ctx, kv, k)
					if err != nil {
						continue
					}
					w.mu.Lock()
					if len(st.Quarantined) > 0 && len(w.quarantines) == 0 && onQuarantine != nil {
						go onQuarantine()
					}
					for _, q := range st.Quarantined {
						if !slices.Contains(w.quarantines, q) {
							w.quarantines = append(w.quarantines, q)
						}
					}
					if st.Paused != "" && !slices.Contains(w.paused, st.Paused) {
						if len(w.paused) == 0 {
							w.pausedAt = time.Now()
						}
						w.paused = append(w.paused, st.Paused)
					}
					w.mu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type resultsFile struct {
	Trials []struct {
		TrialNumber   int                `json:"trial_number"`
		State         string             `json:"state"`
		FailureClass  string             `json:"failure_class"`
		Reason        string             `json:"reason"`
		Runner        string             `json:"runner"`
		GPUModel      string             `json:"gpu_model"`
		GPUs          []int              `json:"gpus"`
		GPUUUIDs      []string           `json:"gpu_uuids"`
		DriverVersion string             `json:"driver_version"`
		CUDAVersion   string             `json:"cuda_version"`
		Metrics       map[string]float64 `json:"metrics"`
		StartedAt     time.Time          `json:"started_at"`
	} `json:"trials"`
}

// TestFakeNVML_study_two_runners_on_one_host is issue 9's "done when": an
// NVML-enabled `sgtune up --runners 2` on a 4-GPU fake host never shares a
// GPU (checked by the servers' own hold records over time), uses every GPU,
// records the fake GPU models, driver and CUDA versions and NVML energy,
// and quarantines the GPU whose memory is released late.
func TestFakeNVML_study_two_runners_on_one_host(t *testing.T) {
	h := newFakeHost(t)
	dir := t.TempDir()
	spec := writeFile(t, dir, "study.yaml", fakeStudySpec("fakenvml", 14, 32, 24, "1, 2"))
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := h.env("SGTUNE_SIM_GPU_RELEASE_DELAY="+lateRelease.String(), "SGTUNE_SIM_GPU_RELEASE_DELAY_GPUS="+fakeUUID(lateGPU))
	up := h.command(ctx, env, "up", "--sim", "--runners", "2", "--spec", spec, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"),
		"--gpu-release-timeout", releaseTimeout.String(), "--no-load")
	var upOut, upErr bytes.Buffer
	up.Stdout, up.Stderr = &upOut, &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()

	// While it runs: the fleet entries, and `sgtune gpus` once a GPU is quarantined.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watch fleetWatch
	gpusSaw := make(chan string, 1)
	eventually(t, 60*time.Second, "the embedded NATS server", func() bool {
		select {
		case err := <-upDone:
			t.Fatalf("sgtune up exited early: %v\n%s", err, upErr.String())
		default:
		}
		nc, _, err := natsx.ConnectClient(ctx, natsx.ConnConfig{URL: url}, time.Second)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	js := jsClient(t, url)
	var once sync.Once
	go watch.run(wctx, js, func() {
		once.Do(func() {
			out, _, _ := h.run(t, ctx, h.env(), "gpus", "--nats-url", url, "--json")
			gpusSaw <- out
		})
	})
	var upRunErr error
	select {
	case upRunErr = <-upDone:
	case <-ctx.Done():
		t.Fatalf("sgtune up did not finish\n%s", upErr.String())
	}
	stopWatch()
	if upRunErr != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", upRunErr, upOut.String(), upErr.String())
	}
	if !strings.Contains(upErr.String(), "4 GPUs (NVML") || !strings.Contains(upErr.String(), "runner 0: 0,1; runner 1: 2,3") {
		t.Errorf("up did not say how it split the GPUs:\n%s", upErr.String())
	}

	// Never shared, every GPU used: by the servers' own records.
	count := checkNeverShared(t, readHolds(t, h.state))
	for g := range 4 {
		if count[g] == 0 {
			t.Errorf("GPU %d (%s) was never used (servers per GPU: %v)", g, fakeUUID(g), count)
		}
	}
	t.Logf("servers per GPU: %v", count)

	// What the results record.
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res resultsFile
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	ran, complete, withEnergy := 0, 0, 0
	for _, tr := range res.Trials {
		if len(tr.GPUs) == 0 {
			continue // rejected: never ran
		}
		ran++
		if tr.State == events.StateComplete {
			complete++
		}
		if tr.GPUModel != fakeNames[tr.GPUs[0]] || tr.DriverVersion != "550.54.15" || tr.CUDAVersion != "12.4" || len(tr.GPUUUIDs) != len(tr.GPUs) {
			t.Errorf("trial %d: model %q driver %q cuda %q uuids %v on GPUs %v", tr.TrialNumber, tr.GPUModel, tr.DriverVersion, tr.CUDAVersion, tr.GPUUUIDs, tr.GPUs)
		}
		for i, g := range tr.GPUs {
			if i < len(tr.GPUUUIDs) && tr.GPUUUIDs[i] != fakeUUID(g) {
				t.Errorf("trial %d: GPU %d recorded as %s", tr.TrialNumber, g, tr.GPUUUIDs[i])
			}
		}
		if tr.Metrics["energy_joules"] > 0 && tr.Metrics["energy_per_output_token"] > 0 && tr.Metrics["gpu_peak_memory_bytes"] > 0 {
			withEnergy++
		}
		if tr.State == events.StateFailed {
			t.Logf("trial %d failed (%s): %s", tr.TrialNumber, tr.FailureClass, tr.Reason)
		}
	}
	if ran == 0 || complete < ran/2 || withEnergy < complete {
		t.Errorf("%d trials ran, %d complete, %d with NVML energy and memory", ran, complete, withEnergy)
	}

	// The late GPU was quarantined, with its reason, in the fleet and in `sgtune gpus`.
	watch.mu.Lock()
	qs := slices.Clone(watch.quarantines)
	watch.mu.Unlock()
	if !slices.ContainsFunc(qs, func(q events.QuarantinedGPU) bool {
		return q.Index == lateGPU && q.UUID == fakeUUID(lateGPU) && strings.Contains(q.Reason, "still used")
	}) {
		t.Errorf("GPU %d was never quarantined in the fleet registry: %+v", lateGPU, qs)
	}
	if slices.ContainsFunc(qs, func(q events.QuarantinedGPU) bool { return q.Index != lateGPU }) {
		t.Errorf("a GPU that releases promptly was quarantined: %+v", qs)
	}
	select {
	case out := <-gpusSaw:
		if !strings.Contains(out, `"state":"quarantined"`) {
			t.Errorf("sgtune gpus --nats-url during the quarantine: %s", out)
		}
	case <-time.After(30 * time.Second):
		t.Error("sgtune gpus --nats-url was not run during a quarantine")
	}
}

// TestFakeNVML_driver_gone_mid_study: NVML disappearing (a driver reload)
// stops the runner from claiming new trials and says so in its log and
// fleet entry; the trial running at the time completes; claiming resumes
// once NVML answers again.
func TestFakeNVML_driver_gone_mid_study(t *testing.T) {
	h := newFakeHost(t)
	dir := t.TempDir()
	spec := writeFile(t, dir, "study.yaml", fakeStudySpec("driver-gone", 5, 96, 96, "1"))
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	data := filepath.Join(dir, "data")
	// Longer benchmarks, so a trial is running when the driver goes; one-GPU
	// trials, at most two at once, so GPUs are free (and not quarantined)
	// while it is gone: only the pause keeps trials off them.
	up := h.command(ctx, h.env(), "up", "--sim", "--max-in-flight", "2", "--runners", "1", "--spec", spec,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", data, "--output", filepath.Join(dir, "results.json"), "--no-load")
	var upErr bytes.Buffer
	up.Stderr = &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	eventually(t, 60*time.Second, "the embedded NATS server", func() bool {
		nc, _, err := natsx.ConnectClient(ctx, natsx.ConnConfig{URL: url}, time.Second)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	js := jsClient(t, url)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watch fleetWatch
	go watch.run(wctx, js, nil)

	// Wait for a trial to be benchmarking, then unload the driver.
	eventually(t, 2*time.Minute, "a trial benchmarking", func() bool {
		found := false
		_ = natsx.Replay(ctx, js, events.StreamProgress, "sgtune.progress.driver-gone.>", func(b []byte, _ natsx.Meta) error {
			var p events.TrialProgress
			if json.Unmarshal(b, &p) == nil && p.Phase == events.PhaseBenchmarking {
				found = true
			}
			return nil
		})
		return found
	})
	marker := filepath.Join(h.state, "driver-unloaded")
	before := len(outcomes(t, ctx, js, "driver-gone"))
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	goneAt := time.Now()
	eventually(t, 30*time.Second, "the pause in the fleet entry", func() bool {
		watch.mu.Lock()
		defer watch.mu.Unlock()
		return len(watch.paused) > 0
	})
	// The trial that was running ends; then the fleet entry, refreshed after
	// its end, shows the runner idle and still paused: nothing was claimed.
	eventually(t, 2*time.Minute, "the running trial's outcome", func() bool { return len(outcomes(t, ctx, js, "driver-gone")) > before })
	endedAt := time.Now()
	fleet, err := js.KeyValue(ctx, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "an idle, paused fleet entry after the trial ended", func() bool {
		lister, err := fleet.ListKeys(ctx)
		if err != nil {
			return false
		}
		for k := range lister.Keys() {
			st, _, err := natsx.GetJSON[events.RunnerStatus](ctx, fleet, k)
			if err == nil && st.UpdatedAt.After(endedAt.Add(time.Second)) && st.Busy == 0 && st.Paused != "" {
				return true
			}
		}
		return false
	})
	backAt := time.Now()
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatalf("sgtune up: %v\n%s", err, upErr.String())
		}
	case <-ctx.Done():
		t.Fatal("sgtune up did not finish")
	}
	stopWatch()
	watch.mu.Lock()
	paused := watch.paused[0]
	pausedAt := watch.pausedAt
	watch.mu.Unlock()
	if !strings.Contains(paused, "NVML cannot read the GPUs") || !strings.Contains(paused, "Driver Not Loaded") {
		t.Errorf("paused reason %q", paused)
	}
	log, _ := os.ReadFile(filepath.Join(data, "sgtune.log"))
	if !bytes.Contains(log, []byte("claiming no new trials")) || !bytes.Contains(log, []byte("NVML answers again")) {
		t.Errorf("the log does not say NVML went and came back")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res resultsFile
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	spanned := 0
	for _, tr := range res.Trials {
		if len(tr.GPUs) == 0 {
			continue
		}
		if tr.State != events.StateComplete {
			t.Errorf("trial %d %s (%s): %s", tr.TrialNumber, tr.State, tr.FailureClass, tr.Reason)
		}
		// Nothing started between the pause being seen and NVML coming back.
		if tr.StartedAt.After(pausedAt.Add(time.Second)) && tr.StartedAt.Before(backAt) {
			t.Errorf("trial %d started at %s, while NVML was gone (%s to %s)", tr.TrialNumber, tr.StartedAt.Format(time.TimeOnly), goneAt.Format(time.TimeOnly), backAt.Format(time.TimeOnly))
		}
		if tr.StartedAt.Before(goneAt) && tr.Metrics["startup_seconds"] > 0 && !tr.StartedAt.IsZero() {
			spanned++
		}
	}
	if spanned == 0 {
		t.Errorf("no trial was running when the driver went")
	}
}
