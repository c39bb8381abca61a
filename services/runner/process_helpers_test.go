package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// The process-level tests and benchmarks run the real sgtune binary: `sgtune
// sim` as the server (launched through the runner's own launch code) and
// `sgtune runner` as a separate OS process. It is built once per test binary.
var sgtuneBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// sgtuneBinary builds cmd/sgtune (or takes $SGTUNE_TEST_BINARY) (workspace mode, CGO off) into a temporary
// directory removed by TestMain, and returns its path. A build failure fails
// the caller: a skipped process test would read as a pass.
func sgtuneBinary(tb testing.TB) string {
	tb.Helper()
	sgtuneBuild.once.Do(func() {
		if p := os.Getenv("SGTUNE_TEST_BINARY"); p != "" {
			sgtuneBuild.path = p // a prebuilt binary (e.g. the nvml build on a GPU host)
			return
		}
		dir, err := os.MkdirTemp("", "sgtune-bin-")
		if err != nil {
			sgtuneBuild.err = err
			return
		}
		sgtuneBuild.dir = dir
		sgtuneBuild.path = filepath.Join(dir, "sgtune")
		cmd := exec.Command("go", "build", "-o", sgtuneBuild.path, "github.com/sgtune/sgtune/cmd/sgtune")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
		sgtuneBuild.out, sgtuneBuild.err = cmd.CombinedOutput()
	})
	if sgtuneBuild.err != nil {
		tb.Fatalf("go build cmd/sgtune: %v\n%s", sgtuneBuild.err, sgtuneBuild.out)
	}
	return sgtuneBuild.path
}

func removeSGTuneBinary() {
	if sgtuneBuild.dir != "" {
		_ = os.RemoveAll(sgtuneBuild.dir)
	}
}

// simArgs are the launch_server flags every simulated server here gets.
var simArgs = []string{"--model-path", "meta-llama/Llama-3.1-8B-Instruct", "--log-level", "warning"}

// launchSim starts `sgtune sim` with the runner's launch code and waits until
// it is healthy; it is stopped (and checked gone) at cleanup.
func launchSim(tb testing.TB, env ...string) *sglang.Server {
	tb.Helper()
	return launchSimWaiting(tb, 30*time.Second, env...)
}

// launchSimWaiting is launchSim waiting up to wait for health (a simulator
// on its real clock takes a real model's start-up).
func launchSimWaiting(tb testing.TB, wait time.Duration, env ...string) *sglang.Server {
	tb.Helper()
	var ports sglang.Ports
	port, err := ports.Pick()
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := sglang.Launch(context.Background(), sglang.LaunchSpec{
		Command: []string{sgtuneBinary(tb), "sim"}, Args: simArgs, Port: port, GPUs: []int{0},
		Env:     append([]string{"SGTUNE_SIM_TIME_SCALE=0.001", "SGTUNE_SIM_SEED=1"}, env...),
		LogPath: filepath.Join(tb.TempDir(), "sim.log"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Stop(5 * time.Second); err != nil {
			tb.Errorf("stop sim: %v", err)
		}
		assertNoProcess(tb, srv.PGID())
	})
	if _, err := srv.WaitHealthy(context.Background(), wait); err != nil {
		tb.Fatalf("sim not healthy: %v\n%s", err, srv.Tail(2048))
	}
	return srv
}

// assertNoProcess fails when any live process of group pgid remains.
func assertNoProcess(tb testing.TB, pgid int) {
	tb.Helper()
	if sglang.GroupAlive(pgid) {
		tb.Errorf("process group %d still has live processes", pgid)
	}
}

// processCPU returns the CPU time (user+system) process pid has used, from
// /proc/<pid>/stat (clock ticks of 1/100 s, Linux's USER_HZ).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	var ticks int64
	for _, x := range f[11:13] { // utime, stime
		n := int64(0)
		for _, c := range x {
			n = n*10 + int64(c-'0')
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// selfCPU is this process's CPU time (user+system), from getrusage.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
