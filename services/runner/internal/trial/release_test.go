package trial

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
)

// recordingReleaser is a GPUReleaser that records what it was asked.
type recordingReleaser struct {
	mu    sync.Mutex
	gpus  [][]int
	after []string
}

func (r *recordingReleaser) AwaitRelease(gpus []int, after string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gpus, r.after = append(r.gpus, slices.Clone(gpus)), append(r.after, after)
	return nil
}

// After the server stops, the trial's own GPUs go to the releaser (the
// guard that quarantines GPUs still holding memory) before Run returns, so
// the runner releases them to the scheduler only afterwards; the result
// names those GPUs by UUID with the driver and CUDA versions.
func TestRun_hands_the_stopped_servers_GPUs_to_the_releaser(t *testing.T) {
	t.Parallel()
	inv, err := gpu.NewSimulated(4, "H100")
	if err != nil {
		t.Fatal(err)
	}
	rel := &recordingReleaser{}
	e, err := New(Config{
		Backend: BackendSim, ServerCommand: fakeserver.Command(), ServerEnv: fakeserver.Env("healthy", nil),
		LogDir: t.TempDir(), Runner: "r1", Host: "h", GPUModel: "H100", Inventory: inv, Releaser: rel,
		DriverVersion: "550.54.15", CUDAVersion: "12.4",
		IdleTimeout: 500 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), queued(7), []int{2, 3}, nil)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v, state %s (%s)", err, res.State, res.Reason)
	}
	rel.mu.Lock()
	defer rel.mu.Unlock()
	if len(rel.gpus) != 1 || !slices.Equal(rel.gpus[0], []int{2, 3}) || rel.after[0] != "trial 7 of study s1" {
		t.Fatalf("releaser got %v after %q", rel.gpus, rel.after)
	}
	if !slices.Equal(res.GPUUUIDs, []string{"GPU-sim-00000002", "GPU-sim-00000003"}) || res.DriverVersion != "550.54.15" || res.CUDAVersion != "12.4" {
		t.Fatalf("result GPUs %v uuids %v driver %q cuda %q", res.GPUs, res.GPUUUIDs, res.DriverVersion, res.CUDAVersion)
	}
}
