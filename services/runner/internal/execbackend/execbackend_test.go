package execbackend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Tests use sh -c scripts for brevity; the product never runs a shell itself.
func sh(script string) []string { return []string{"sh", "-c", script} }

var in = Input{Study: "s1", Trial: 7, Params: events.Params{"tp_size": 2.0}, GPUs: []int{0, 1}}

func TestRun_contract(t *testing.T) {
	t.Parallel()
	// The script echoes back what it read so the input can be checked.
	out, err := Run(context.Background(), sh(`read line; echo "$line" >&2; echo '{"ttft": 0.25, "tps": 1200, "p99": 3, "name": "x", "ok": true}'`), nil, in, 10*time.Second)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]float64{"ttft": 0.25, "tps": 1200, "p99": 3, "mean_ttft_ms": 250, "output_throughput": 1200}
	if len(out.Metrics) != len(want) {
		t.Fatalf("metrics = %v, want %v", out.Metrics, want)
	}
	for k, v := range want {
		if out.Metrics[k] != v {
			t.Fatalf("%s = %v, want %v", k, out.Metrics[k], v)
		}
	}
	if !strings.Contains(out.Stderr, `{"study":"s1","trial":7,"params":{"tp_size":2},"gpus":[0,1]}`) {
		t.Fatalf("stdin was %q", out.Stderr)
	}
}

func TestRun_failures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		givenScript    string
		givenTimeout   time.Duration
		expectedClass  string
		expectedReason string
	}{
		{name: "non-zero exit", givenScript: `echo "CUDA broke" >&2; exit 3`, expectedClass: events.FailCrash, expectedReason: "CUDA broke"},
		{name: "not json", givenScript: `echo hello`, expectedClass: events.FailBenchError, expectedReason: "not a JSON object"},
		{name: "missing tps", givenScript: `echo '{"ttft": 1}'`, expectedClass: events.FailBenchError, expectedReason: `lacks numeric "tps"`},
		{name: "two objects", givenScript: `echo '{"ttft":1,"tps":2}{"ttft":1,"tps":2}'`, expectedClass: events.FailBenchError, expectedReason: "more than one"},
		{name: "array", givenScript: `echo '[1]'`, expectedClass: events.FailBenchError, expectedReason: "not a JSON object"},
		{name: "timeout kills the group", givenScript: `echo started >&2; sleep 30 & sleep 30`, givenTimeout: 300 * time.Millisecond, expectedClass: events.FailTimeout, expectedReason: "started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout := tt.givenTimeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			start := time.Now()
			_, err := Run(context.Background(), sh(tt.givenScript), nil, in, timeout)
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Failure", err)
			}
			if f.Class != tt.expectedClass || !strings.Contains(f.Reason, tt.expectedReason) {
				t.Fatalf("failure = %+v, want class %s with %q", f, tt.expectedClass, tt.expectedReason)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestRun_cancel_is_not_a_failure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, sh(`sleep 30`), nil, in, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Run(context.Background(), nil, nil, in, time.Second); !errors.Is(err, ErrNoCommand) {
		t.Fatalf("err = %v, want ErrNoCommand", err)
	}
}
