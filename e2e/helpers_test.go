package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// sgtuneBin is the sgtune binary built once for the whole package.
var sgtuneBin string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == fakeTrialArg {
		// The exec backend's benchmark command of fleet_test.go.
		if err := fakeTrial(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sgtune-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sgtuneBin = filepath.Join(dir, "sgtune")
	build := exec.Command("go", "build", "-o", sgtuneBin, "github.com/sgtune/sgtune/cmd/sgtune")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sgtune: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// quickSpec is a small study on the simulator: short benchmarks, a few trials.
func quickSpec(name string, trials int) string {
	return fmt.Sprintf(`study_name: %s
n_trials: %d
device_num: 4
model:
  path: meta-llama/Llama-3.1-8B-Instruct
  startup_timeout: 60s
  compile_startup_timeout: 60s
  benchmark_timeout: 60s
  shutdown_timeout: 5s
workload:
  num_prompts: 24
  random_input_len: 128
  random_output_len: 16
  max_concurrency: 8
  warmup_requests: 1
sampler:
  startup_trials: 4
`, name, trials)
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// readFront reads KV pareto/<key> with a plain NATS client, as any user would.
func readFront(t *testing.T, ctx context.Context, js jetstream.JetStream, key string) []byte {
	t.Helper()
	kv, err := js.KeyValue(ctx, events.BucketPareto)
	if err != nil {
		t.Fatalf("open bucket pareto: %v", err)
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatalf("get pareto/%s: %v", key, err)
	}
	return e.Value()
}

// checkFrontLine checks the KV value is one line of printable ASCII, so
// `nats kv get pareto front` prints it as text.
func checkFrontLine(t *testing.T, v []byte) {
	t.Helper()
	if bytes.ContainsAny(v, "\n\r\t") {
		t.Fatalf("front is not one line: %q", v)
	}
	for _, b := range v {
		if b < 0x20 || b > 0x7e {
			t.Fatalf("front has a non-printable or non-ASCII byte %#x", b)
		}
	}
}

// outcomes returns every outcome of a study by trial number, failing on a
// trial that has two.
func outcomes(t *testing.T, ctx context.Context, js jetstream.JetStream, study string) map[int]events.Envelope {
	t.Helper()
	out := map[int]events.Envelope{}
	err := natsx.Replay(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy(study), func(data []byte, _ natsx.Meta) error {
		env, err := events.PeekEnvelope(data)
		if err != nil {
			return err
		}
		if _, dup := out[env.Trial]; dup {
			return fmt.Errorf("trial %d has two outcomes", env.Trial)
		}
		out[env.Trial] = env
		return nil
	})
	if err != nil {
		t.Fatalf("replay outcomes: %v", err)
	}
	return out
}

// simProcesses lists live processes started from our sgtune binary with "sim".
func simProcesses() []string {
	var live []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[0] == sgtuneBin && args[1] == "sim" {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if strings.Contains(string(stat), ") Z ") {
				continue // a zombie has exited
			}
			live = append(live, e.Name())
		}
	}
	return live
}

// eventually polls cond until it holds or the limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
