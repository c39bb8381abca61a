package runner

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/trial"
)

// TestTrial_records_what_sglang_sim_ran runs one trial on a real sglang-sim
// process and checks the result says what the server ran, as SGLang
// reports it: its version, the model, the values SGLang chose itself (the
// H100's automatic chunked prefill, the attention backend, the static
// memory fraction) and the one it changed silently (pipeline parallelism
// turns the overlap scheduler off).
func TestTrial_records_what_sglang_sim_ran(t *testing.T) {
	if testing.Short() {
		t.Skip("launches a simulator process")
	}
	bin := sgtuneBinary(t)
	exec, err := trial.New(trial.Config{
		Backend: trial.BackendSim, ServerCommand: []string{bin, "sim"},
		ServerEnv: []string{"SGTUNE_SIM_TIME_SCALE=0.001", "SGTUNE_SIM_SEED=1", "SGTUNE_SIM_GPU=H100"},
		LogDir:    t.TempDir(), Runner: "what-ran", Host: "test", GPUModel: "H100",
		IdleTimeout: 5 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	q := simTrial(1, time.Minute, time.Minute, 5*time.Second)
	q.Params = events.Params{"pp_size": 2.0, "disable_overlap_schedule": false, "chunked_prefill_size": nil, "attention_backend": nil}
	q.GPUs = 2
	q.ServerArgs = append(slices.Clone(simArgs), "--pp-size", "2")
	res, err := exec.Run(context.Background(), q, []int{0, 1}, nil)
	if err != nil || res.State != events.StateComplete {
		t.Fatalf("Run: %v %s %s %s\n%s", err, res.State, res.FailureClass, res.Reason, res.LogTail)
	}
	if res.SGLangVersion == "" || res.ModelPathLoaded != "meta-llama/Llama-3.1-8B-Instruct" {
		t.Fatalf("version %q model %q", res.SGLangVersion, res.ModelPathLoaded)
	}
	eff := res.EffectiveParams
	if eff["pp_size"] != 2.0 || eff["disable_overlap_schedule"] != true || eff["chunked_prefill_size"] != 8192.0 {
		t.Fatalf("effective params %v", eff)
	}
	if b, _ := eff["attention_backend"].(string); b == "" {
		t.Fatalf("attention backend SGLang chose is not recorded: %v", eff)
	}
	if m, _ := eff["mem_fraction_static"].(float64); m <= 0 || m >= 1 {
		t.Fatalf("mem_fraction_static = %v", eff["mem_fraction_static"])
	}
	if !slices.Equal(res.AdjustedParams, []string{"disable_overlap_schedule"}) {
		t.Fatalf("adjusted = %v, want the overlap scheduler SGLang turns off under pp", res.AdjustedParams)
	}
}
