package trial

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
)

func TestMain(m *testing.M) {
	if fakeserver.Enabled() {
		os.Exit(fakeserver.Main())
	}
	os.Exit(m.Run())
}

func queued(trial int) events.TrialQueued {
	return events.TrialQueued{
		Envelope:   events.NewEnvelope(events.TypeTrialQueued, "s1", trial, time.Now()),
		Params:     events.Params{"tp_size": 2.0},
		GPUs:       2,
		ServerArgs: []string{"--model-path", "fake/model", "--tp-size", "2"},
		Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 6, RandomInputLen: 16,
			RandomOutputLen: 4, RandomRangeRatio: 1, MaxConcurrency: 2, WarmupRequests: 1, Seed: 3, IgnoreEOS: true},
		Timeouts: events.Timeouts{Startup: events.Duration(10 * time.Second), Benchmark: events.Duration(20 * time.Second),
			Shutdown: events.Duration(time.Second)},
	}
}

type phases struct {
	mu  sync.Mutex
	got []string
}

func (p *phases) record(phase, _ string) { p.mu.Lock(); p.got = append(p.got, phase); p.mu.Unlock() }

func newExec(t *testing.T, mode string, extra map[string]string) *Executor {
	t.Helper()
	e, err := New(Config{
		Backend: BackendSim, ServerCommand: fakeserver.Command(), ServerEnv: fakeserver.Env(mode, extra),
		LogDir: t.TempDir(), Runner: "r1", Host: "h", GPUModel: "H100",
		IdleTimeout: 500 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRun_complete(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", nil)
	var p phases
	res, err := e.Run(context.Background(), queued(4), []int{2, 3}, p.record)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.State != events.StateComplete {
		t.Fatalf("state %s: %s %s\n%s", res.State, res.FailureClass, res.Reason, res.LogTail)
	}
	if res.Type != events.TypeTrialResult || res.Study != "s1" || res.Trial != 4 || res.ID != events.MsgID(events.TypeTrialResult, "s1", 4) {
		t.Fatalf("envelope = %+v", res.Envelope)
	}
	if res.Metrics["completed"] != 6 || res.Metrics["startup_seconds"] <= 0 || res.Units["mean_ttft_ms"] != "ms" || res.Units["startup_seconds"] != "s" {
		t.Fatalf("metrics = %v units = %v", res.Metrics, res.Units)
	}
	// Per-GPU figures: the trial ran on two GPUs.
	if res.Metrics["gpus"] != 2 || res.Metrics["output_throughput"] <= 0 ||
		res.Metrics["output_throughput_per_gpu"] != res.Metrics["output_throughput"]/2 ||
		res.Metrics["request_throughput_per_gpu"] != res.Metrics["request_throughput"]/2 ||
		res.Units["output_throughput_per_gpu"] != "tok/s/GPU" || res.Units["gpus"] != "GPU" {
		t.Fatalf("per-GPU metrics = %v units = %v", res.Metrics, res.Units)
	}
	if _, ok := res.Metrics["mean_ttft_ms_per_gpu"]; ok {
		t.Fatal("a latency got a per-GPU twin")
	}
	if !slices.Contains(res.LaunchCommand, "--port") || !slices.Contains(res.LaunchCommand, "--tp-size") || res.Backend != "sim" {
		t.Fatalf("launch command = %v", res.LaunchCommand)
	}
	log, err := os.ReadFile(res.LogRef)
	if err != nil || !strings.Contains(string(log), `gpus="2,3"`) || !strings.Contains(res.LogTail, "fake sglang") {
		t.Fatalf("log %q (%v), tail %q", log, err, res.LogTail)
	}
	want := []string{events.PhaseLaunching, events.PhaseHealthy, events.PhaseBenchmarking, events.PhaseStopping}
	if !slices.Equal(p.got, want) {
		t.Fatalf("phases = %v, want %v", p.got, want)
	}
}

func TestRun_failed_results(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenMode     string
		givenExtra    map[string]string
		givenStartup  time.Duration
		expectedClass string
	}{
		{name: "oom at startup", givenMode: "oom", expectedClass: events.FailOOM},
		{name: "crash at startup", givenMode: "crash", expectedClass: events.FailCrash},
		{name: "never healthy", givenMode: "starting", givenStartup: 500 * time.Millisecond, expectedClass: events.FailTimeout},
		{name: "dies during benchmark", givenMode: "die-after-healthy", givenExtra: map[string]string{"SGTUNE_FAKE_ITL": "100ms"}, expectedClass: events.FailOOM},
		{name: "stream stalls", givenMode: "healthy", givenExtra: map[string]string{"SGTUNE_FAKE_STREAM": "stall"}, expectedClass: events.FailBenchError},
		{name: "stream errors", givenMode: "healthy", givenExtra: map[string]string{"SGTUNE_FAKE_STREAM": "error"}, expectedClass: events.FailBenchError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExec(t, tt.givenMode, tt.givenExtra)
			q := queued(1)
			if tt.givenStartup > 0 {
				q.Timeouts.Startup = events.Duration(tt.givenStartup)
			}
			res, err := e.Run(context.Background(), q, []int{0}, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.State != events.StateFailed || res.FailureClass != tt.expectedClass {
				t.Fatalf("state %s class %q reason %q, want failed %q\n%s", res.State, res.FailureClass, res.Reason, tt.expectedClass, res.LogTail)
			}
			if res.Reason == "" || res.LogRef == "" || res.LogTail == "" {
				t.Fatalf("reason %q logref %q tail %q", res.Reason, res.LogRef, res.LogTail)
			}
		})
	}
}

func TestRun_cancel_hands_back(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_ITL": "200ms"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the benchmark runs (the fake server streams a token every
	// 200 ms, so it is still running), not after a guessed delay.
	_, err := e.Run(ctx, queued(2), []int{0}, func(phase, _ string) {
		if phase == events.PhaseBenchmarking {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRun_unstartable_command_is_infrastructure(t *testing.T) {
	t.Parallel()
	e, err := New(Config{Backend: BackendSGLang, ServerCommand: []string{"/nonexistent/python3"}, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), queued(3), []int{0}, nil); !errors.Is(err, ErrInfrastructure) {
		t.Fatalf("err = %v, want ErrInfrastructure", err)
	}
}

func TestRun_exec_backend(t *testing.T) {
	t.Parallel()
	ok, err := New(Config{Backend: BackendExec, LogDir: t.TempDir(),
		BenchmarkCmd: []string{"sh", "-c", `cat >/dev/null; echo "gpus=$CUDA_VISIBLE_DEVICES" >&2; echo '{"ttft":0.5,"tps":900}'`}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ok.Run(context.Background(), queued(5), []int{1}, nil)
	if err != nil || res.State != events.StateComplete || res.Metrics["mean_ttft_ms"] != 500 || res.Metrics["tps"] != 900 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if res.Metrics["gpus"] != 1 || res.Metrics["output_throughput_per_gpu"] != 900 {
		t.Fatalf("exec per-GPU metrics = %v", res.Metrics)
	}
	if !strings.Contains(res.LogTail, "gpus=1") || res.Backend != "exec" {
		t.Fatalf("tail %q backend %q", res.LogTail, res.Backend)
	}
	bad, _ := New(Config{Backend: BackendExec, LogDir: t.TempDir(), BenchmarkCmd: []string{"sh", "-c", "echo nope >&2; exit 2"}})
	res, err = bad.Run(context.Background(), queued(6), []int{1}, nil)
	if err != nil || res.State != events.StateFailed || res.FailureClass != events.FailCrash || !strings.Contains(res.Reason, "nope") {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestModelName(t *testing.T) {
	t.Parallel()
	if got := modelName([]string{"--model-path", "m/a", "--served-model-name", "x"}); got != "x" {
		t.Fatal(got)
	}
	if got := modelName([]string{"--model-path", "m/a"}); got != "m/a" {
		t.Fatal(got)
	}
	if got := modelName(nil); got != "default" {
		t.Fatal(got)
	}
}

// meteredInventory is a 4-GPU inventory whose GPUs draw 200 W at 80 %
// utilisation with 30 GiB in use, and whose energy counters advance with time.
type meteredInventory struct{ start time.Time }

func (m *meteredInventory) GPUs() []events.GPU { return nil }
func (m *meteredInventory) MemoryUsed(int) (uint64, error) {
	return 0, nil // released: the post-stop check passes at once
}
func (m *meteredInventory) Sample(int) (gpu.Reading, error) {
	return gpu.Reading{PowerMilliwatts: 200_000, UtilizationPct: 80, MemoryUsedBytes: 30 << 30,
		EnergyMillijoules: uint64(time.Since(m.start).Milliseconds()) * 200, HasPower: true, HasUtil: true, HasEnergy: true}, nil
}

func TestRun_reports_gpu_usage_with_a_sampler(t *testing.T) {
	t.Parallel()
	e, err := New(Config{
		Backend: BackendSim, ServerCommand: fakeserver.Command(), ServerEnv: fakeserver.Env("healthy", nil),
		LogDir: t.TempDir(), Runner: "r1", Host: "h", GPUModel: "H100", Inventory: &meteredInventory{start: time.Now()},
		IdleTimeout: 5 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), queued(5), []int{2, 3}, nil)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %+v", err, res)
	}
	m := res.Metrics
	if m["gpu_peak_memory_bytes"] != 30<<30 || m["gpu_peak_memory_total_bytes"] != 60<<30 ||
		m["gpu_mean_utilization"] != 80 || m["gpu_mean_power_watts"] != 400 || res.Units["gpu_mean_power_watts"] != "W" {
		t.Fatalf("metrics = %v", m)
	}
	if m["energy_joules"] < 0 || m["energy_per_output_token"] < 0 {
		t.Fatalf("energy metrics = %v", m)
	}
}

func TestRun_the_spec_api_key_reaches_every_request(t *testing.T) {
	t.Parallel()
	// The fake server refuses every request without the key, as SGLang does
	// with --api-key (static_args: {api_key: ...} in the spec).
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_API_KEY": "sk-trial"})
	q := queued(7)
	q.ServerArgs = append(q.ServerArgs, "--api-key", "sk-trial")
	res, err := e.Run(context.Background(), q, []int{0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != events.StateComplete || res.Metrics["completed"] != 6 {
		t.Fatalf("state %s: %s %s, metrics %v", res.State, res.FailureClass, res.Reason, res.Metrics)
	}
	q = queued(8) // the same server without the key in the trial's args
	res, err = e.Run(context.Background(), q, []int{0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != events.StateFailed || !strings.Contains(res.Reason, "401") {
		t.Fatalf("without the key: state %s, reason %q", res.State, res.Reason)
	}
}

func TestRun_a_load_ladder_on_one_launch(t *testing.T) {
	t.Parallel()
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_TTFT": "2ms"})
	q := queued(9)
	q.Workload.Load = &events.LoadLadder{Concurrency: []int{1, 2, 4}}
	var p phases
	res, err := e.Run(context.Background(), q, []int{0}, p.record)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != events.StateComplete || len(res.LoadPoints) != 3 {
		t.Fatalf("state %s (%s), %d load points", res.State, res.Reason, len(res.LoadPoints))
	}
	for i, c := range []int{1, 2, 4} {
		if lp := res.LoadPoints[i]; lp.MaxConcurrency != c || lp.Metrics["completed"] != 6 {
			t.Fatalf("load point %d: %+v", i, lp)
		}
	}
	// The headline is the workload's max_concurrency (2).
	if res.Metrics["mean_ttft_ms"] != res.LoadPoints[1].Metrics["mean_ttft_ms"] || len(res.InputLens) != 6 || res.InputLens[0] != 16 {
		t.Fatalf("headline metrics %v, input lens %v", res.Metrics, res.InputLens)
	}
	// One launch: the log shows one server start.
	log, _ := os.ReadFile(res.LogRef)
	if n := strings.Count(string(log), "fake sglang: mode="); n != 1 {
		t.Fatalf("%d server starts for a 3-level ladder", n)
	}
}

func TestRun_a_server_crashing_mid_ladder_keeps_the_levels_before(t *testing.T) {
	t.Parallel()
	// 6 measured + 1 warm-up requests a level: the 10th request is in level 2.
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_CRASH_AFTER": "10"})
	q := queued(10)
	q.Workload.Load = &events.LoadLadder{Concurrency: []int{1, 2, 4}}
	res, err := e.Run(context.Background(), q, []int{0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != events.StateFailed || res.FailureClass != events.FailOOM {
		t.Fatalf("state %s class %s: %s", res.State, res.FailureClass, res.Reason)
	}
	if len(res.LoadPoints) < 1 || res.LoadPoints[0].MaxConcurrency != 1 || res.LoadPoints[0].Metrics["completed"] != 6 {
		t.Fatalf("load points %+v: the first level must be kept", res.LoadPoints)
	}
}

func TestRun_a_capacity_search_on_one_launch(t *testing.T) {
	t.Parallel()
	// TTFT = 5 ms + 5 ms per request in flight: p90 TTFT <= 42 ms up to 7 streams.
	e := newExec(t, "healthy", map[string]string{"SGTUNE_FAKE_TTFT": "5ms", "SGTUNE_FAKE_TTFT_PER_STREAM": "5ms"})
	tests := []struct {
		name             string
		givenBound       float64
		expectedCapacity [2]float64 // range
	}{
		{name: "feasible", givenBound: 42, expectedCapacity: [2]float64{5, 7}},
		{name: "no level meets it", givenBound: 1, expectedCapacity: [2]float64{0, 0}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := queued(20 + i)
			q.Workload.Capacity = &events.CapacitySearch{Search: events.SearchConcurrency, Max: 16,
				SLO: map[string]float64{"p90_ttft_ms": tt.givenBound}, RequestsPerLevel: 20}
			res, err := e.Run(context.Background(), q, []int{0, 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := res.Metrics["capacity_concurrency"]
			if res.State != events.StateComplete || got < tt.expectedCapacity[0] || got > tt.expectedCapacity[1] || len(res.LoadPoints) == 0 {
				t.Fatalf("state %s, capacity %v after %d levels (%s)", res.State, got, len(res.LoadPoints), res.Reason)
			}
			if (got == 0) != strings.Contains(res.Reason, "no load level met") {
				t.Fatalf("capacity %v, reason %q", got, res.Reason)
			}
			log, _ := os.ReadFile(res.LogRef)
			if n := strings.Count(string(log), "fake sglang: mode="); n != 1 {
				t.Fatalf("%d server starts for one capacity search", n)
			}
			// Per GPU (two here): the capacity's twin, and each level's.
			m := res.Metrics
			if m["gpus"] != 2 || m["capacity_output_throughput_per_gpu"] != m["capacity_output_throughput"]/2 ||
				m["capacity_concurrency_per_gpu"] != got/2 {
				t.Fatalf("per-GPU capacity figures: %v", m)
			}
			if lp := res.LoadPoints[0].Metrics; lp["output_throughput_per_gpu"] != lp["output_throughput"]/2 || lp["output_throughput"] <= 0 {
				t.Fatalf("load point per-GPU figures: %v", lp)
			}
		})
	}
}
