// Package execbackend runs a user's benchmark command once per trial (the
// "exec" backend). The contract is fixed, users script against it:
//
//   - the command (an argv, never run through a shell) is started in its own
//     process group;
//   - it receives ONE JSON object on stdin:
//     {"study": NAME, "trial": N, "params": {...}, "gpus": [...]}
//   - it prints ONE JSON object on stdout with at least "ttft" (seconds) and
//     "tps" (output tokens per second); every other numeric field is kept as a
//     metric, and mean_ttft_ms = ttft*1000 and output_throughput = tps are
//     added when absent so objectives work the same as with SGLang;
//   - a non-zero exit is a failed trial of class crash, output that is not
//     such an object one of class bench-error, and running past the timeout
//     one of class timeout (the whole group is killed); the reason carries the
//     tail of stderr.
package execbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// ErrNoCommand is returned when the benchmark command is empty.
var ErrNoCommand = errors.New("execbackend: empty benchmark command")

// Input is the object written to the command's stdin.
type Input struct {
	Study  string        `json:"study"`
	Trial  int           `json:"trial"`
	Params events.Params `json:"params"`
	GPUs   []int         `json:"gpus"`
}

// Failure is a failed run: Class is an events.Fail* constant.
type Failure struct {
	Class  string
	Reason string
}

func (f *Failure) Error() string { return f.Class + ": " + f.Reason }

// Output is a successful run.
type Output struct {
	// Metrics are the numeric fields of the command's output plus the aliases.
	Metrics map[string]float64
	Units   map[string]string
	// Stderr is the tail of what the command wrote to stderr.
	Stderr string
}

// stderrTail bounds the stderr kept for the reason and log tail.
const stderrTail = 4 << 10

// Run starts argv with env added to the runner's environment, feeds it in,
// and parses its answer. A *Failure is returned for the command's own
// failures; ctx's error when ctx is cancelled (the runner stops: the group is
// killed and the trial is not a result).
func Run(ctx context.Context, argv []string, env []string, in Input, timeout time.Duration) (*Output, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, ErrNoCommand
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("execbackend: encode input: %w", err)
	}
	stdin = append(stdin, '\n')
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: stderrTail}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = &limitedBuffer{buf: &stdout, max: 16 << 20}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Do not wait forever for grandchildren that keep stdout open.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, &Failure{Class: events.FailCrash, Reason: fmt.Sprintf("start %s: %v", argv[0], err)}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if timeout <= 0 {
		timeout = 24 * time.Hour
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	kill := func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	select {
	case err = <-done:
		// The leader exited; take no prisoners among its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	case <-timer.C:
		kill()
		return nil, &Failure{Class: events.FailTimeout, Reason: withTail(fmt.Sprintf("benchmark command ran longer than %s", timeout), stderr.String())}
	case <-ctx.Done():
		kill()
		return nil, ctx.Err()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &Failure{Class: events.FailCrash, Reason: withTail(fmt.Sprintf("benchmark command failed: %v", ee), stderr.String())}
		}
		return nil, &Failure{Class: events.FailCrash, Reason: withTail(fmt.Sprintf("benchmark command: %v", err), stderr.String())}
	}
	metrics, perr := ParseOutput(stdout.Bytes())
	if perr != nil {
		return nil, &Failure{Class: events.FailBenchError, Reason: withTail(perr.Error(), stderr.String())}
	}
	units := map[string]string{"ttft": "s", "tps": "tok/s", "mean_ttft_ms": "ms", "output_throughput": "tok/s"}
	for k := range units {
		if _, ok := metrics[k]; !ok {
			delete(units, k)
		}
	}
	return &Output{Metrics: metrics, Units: units, Stderr: stderr.String()}, nil
}

// ParseOutput reads the command's stdout: one JSON object (surrounding
// whitespace allowed) with numeric "ttft" and "tps". Non-numeric fields are
// ignored; booleans are not metrics.
func ParseOutput(b []byte) (map[string]float64, error) {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(b)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("benchmark output is not a JSON object: %v (stdout %q)", err, clip(b, 200))
	}
	if dec.More() {
		return nil, fmt.Errorf("benchmark output holds more than one JSON value (stdout %q)", clip(b, 200))
	}
	m := map[string]float64{}
	for k, v := range obj {
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				m[k] = f
			}
		}
	}
	for _, k := range []string{"ttft", "tps"} {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("benchmark output lacks numeric %q (stdout %q)", k, clip(b, 200))
		}
	}
	if _, ok := m["mean_ttft_ms"]; !ok {
		m["mean_ttft_ms"] = m["ttft"] * 1000
	}
	if _, ok := m["output_throughput"]; !ok {
		m["output_throughput"] = m["tps"]
	}
	return m, nil
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func withTail(reason, stderr string) string {
	stderr = strings.TrimSpace(stderr)
	if stderr == "" {
		return reason
	}
	if len(stderr) > 1024 {
		stderr = "..." + stderr[len(stderr)-1024:]
	}
	return reason + "; stderr: " + stderr
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.b) > t.max {
		return string(t.b[len(t.b)-t.max:])
	}
	return string(t.b)
}

// limitedBuffer stops storing after max bytes (the rest is discarded).
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
