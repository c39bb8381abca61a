package runner

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/trial"
)

// simTrial is a small trial for `sgtune sim`.
func simTrial(n int, startup, bench, shutdown time.Duration) events.TrialQueued {
	return events.TrialQueued{
		Envelope: events.NewEnvelope(events.TypeTrialQueued, "faults", n, time.Now()),
		Params:   events.Params{"tp_size": 1.0}, GPUs: 1,
		ServerArgs: simArgs,
		Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 8, RandomInputLen: 32,
			RandomOutputLen: 16, RandomRangeRatio: 1, MaxConcurrency: 4, WarmupRequests: 1, Seed: 1, IgnoreEOS: true},
		Timeouts: events.Timeouts{Startup: events.Duration(startup), Benchmark: events.Duration(bench),
			Shutdown: events.Duration(shutdown)},
	}
}

// processesOf lists the live (non-zombie) processes whose argv[0] is bin.
func processesOf(bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if string(argv0) != bin {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// TestSimFaults_as_real_processes launches `sgtune sim` with each injected
// fault through the runner's trial executor (own process group, health wait,
// load generator, SIGTERM then SIGKILL) and checks that each ends as the
// right result within its timeout and leaves no process behind.
func TestSimFaults_as_real_processes(t *testing.T) {
	if testing.Short() {
		t.Skip("launches simulator processes")
	}
	bin := sgtuneBinary(t)
	const slack = 5 * time.Second // launch, log flush, stop and a loaded 2-core machine
	tests := []struct {
		name          string
		givenFault    string
		givenEnv      []string
		givenStartup  time.Duration
		givenShutdown time.Duration
		expectedState string
		expectedClass string
		expectedLog   string        // a piece of the log tail or reason
		expectedMin   time.Duration // the trial cannot end sooner (a timeout that must be waited out)
		expectedMax   time.Duration // ... and must end by then
	}{
		{name: "slow start", givenFault: "slow-start", givenEnv: []string{"SGTUNE_SIM_FAULT_SECONDS=60"},
			givenStartup: 2 * time.Second, expectedState: events.StateFailed, expectedClass: events.FailTimeout,
			expectedLog: "still starting", expectedMin: 2 * time.Second, expectedMax: 2*time.Second + slack},
		{name: "never healthy", givenFault: "never-healthy",
			givenStartup: 2 * time.Second, expectedState: events.StateFailed, expectedClass: events.FailTimeout,
			expectedLog: "503", expectedMin: 2 * time.Second, expectedMax: 2*time.Second + slack},
		{name: "crash at start", givenFault: "crash-at-start",
			givenStartup: time.Minute, expectedState: events.StateFailed, expectedClass: events.FailCrash,
			expectedLog: "Traceback", expectedMax: slack},
		{name: "oom under load", givenFault: "oom-under-load", givenEnv: []string{"SGTUNE_SIM_FAULT_AFTER=4"},
			givenStartup: time.Minute, expectedState: events.StateFailed, expectedClass: events.FailOOM,
			expectedLog: "OutOfMemoryError", expectedMax: slack},
		{name: "hang during the benchmark", givenFault: "hang-during-bench", givenEnv: []string{"SGTUNE_SIM_FAULT_AFTER=4"},
			givenStartup: time.Minute, expectedState: events.StateFailed, expectedClass: events.FailUnhealthy,
			expectedLog: "stalled", expectedMin: 2 * time.Second, expectedMax: 2*time.Second + slack},
		{name: "ignores SIGTERM", givenFault: "ignore-sigterm", givenShutdown: 2 * time.Second,
			givenStartup: time.Minute, expectedState: events.StateComplete,
			expectedMin: 2 * time.Second, expectedMax: 2*time.Second + 10*time.Second},
	}
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				env := append([]string{"SGTUNE_SIM_TIME_SCALE=0.001", "SGTUNE_SIM_SEED=1", "SGTUNE_SIM_FAULT=" + tt.givenFault}, tt.givenEnv...)
				exec, err := trial.New(trial.Config{
					Backend: trial.BackendSim, ServerCommand: []string{bin, "sim"}, ServerEnv: env,
					LogDir: t.TempDir(), Runner: "faults", Host: "test", GPUModel: "H100",
					IdleTimeout: 2 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)),
				})
				if err != nil {
					t.Fatal(err)
				}
				shutdown := tt.givenShutdown
				if shutdown == 0 {
					shutdown = 5 * time.Second
				}
				q := simTrial(1, tt.givenStartup, time.Minute, shutdown)
				start := time.Now()
				res, err := exec.Run(context.Background(), q, []int{0}, nil)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("Run returned an infrastructure error: %v", err)
				}
				t.Logf("%s: %s %q after %v: %s", tt.givenFault, res.State, res.FailureClass, took.Round(time.Millisecond), res.Reason)
				if res.State != tt.expectedState || res.FailureClass != tt.expectedClass {
					t.Fatalf("state %s class %q (%s), want %s %q\nlog tail:\n%s", res.State, res.FailureClass, res.Reason,
						tt.expectedState, tt.expectedClass, res.LogTail)
				}
				if tt.expectedLog != "" && !strings.Contains(res.Reason+res.LogTail, tt.expectedLog) {
					t.Errorf("neither reason nor log tail mention %q:\n%s\n%s", tt.expectedLog, res.Reason, res.LogTail)
				}
				if took < tt.expectedMin || took > tt.expectedMax {
					t.Errorf("trial took %v, want between %v and %v", took, tt.expectedMin, tt.expectedMax)
				}
				if res.LogRef == "" {
					t.Error("no log file named in the result")
				}
				if tt.expectedState == events.StateComplete && res.Metrics["completed"] != float64(q.Workload.NumPrompts) {
					t.Errorf("completed = %v, want %d", res.Metrics["completed"], q.Workload.NumPrompts)
				}
			})
		}
	})
	if left := processesOf(bin); len(left) > 0 {
		t.Fatalf("simulator processes left behind: %v", left)
	}
}
