package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStudyStopsHopelessTrialsEarly runs a study with sampler.early_stop
// through separate services on sglang-sim: runners publish what each trial
// measured as it goes, the sampler stops trials that cannot reach the
// front, and those are recorded PRUNED with their partial metrics, count
// as launches, and never join the front; the results report GPU-hours.
func TestStudyStopsHopelessTrialsEarly(t *testing.T) {
	dir := t.TempDir()
	command, launches := countingSim(t, dir)
	spec := writeFile(t, dir, "early.yaml", fmt.Sprintf(`study_name: early-stop-e2e
n_trials: 20
device_num: 4
rules: {sets: [seed, sglang, hardware]}
model:
  path: meta-llama/Llama-3.1-8B-Instruct
  preset: llama-3.1-8b
  server_command: [%s]
  startup_timeout: 60s
  compile_startup_timeout: 60s
  benchmark_timeout: 60s
  shutdown_timeout: 5s
workload: {num_prompts: 96, random_input_len: 256, random_output_len: 32, max_concurrency: 8, warmup_requests: 1}
sampler: {startup_trials: 4, early_stop: true, seed: 7}
`, command))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--spec", spec, "--runners", "2", "--gpus", "8",
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"), "--quiet")
	if err != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		NTrials  int     `json:"n_trials"`
		GPUHours float64 `json:"gpu_hours"`
		Counts   struct {
			Pruned, Benchmarked int
		} `json:"counts"`
		ParetoFront []struct {
			TrialNumber int `json:"trial_number"`
		} `json:"pareto_front"`
		Trials []struct {
			TrialNumber   int                `json:"trial_number"`
			State         string             `json:"state"`
			ParetoOptimal bool               `json:"pareto_optimal"`
			Metrics       map[string]float64 `json:"metrics"`
			Reason        string             `json:"reason"`
			GPUSeconds    float64            `json:"gpu_seconds"`
		} `json:"trials"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.NTrials != 20 {
		t.Fatalf("n_trials = %d, want 20 (pruned trials count)\nstdout:\n%s\nstderr:\n%s", res.NTrials, out, errOut)
	}
	if n := countLines(t, launches); n != res.NTrials {
		t.Errorf("%d launches for %d benchmarked trials", n, res.NTrials)
	}
	pruned, gpuSeconds := 0, 0.0
	for _, tr := range res.Trials {
		gpuSeconds += tr.GPUSeconds
		if tr.State != "PRUNED" {
			continue
		}
		pruned++
		if tr.ParetoOptimal || !strings.Contains(tr.Reason, "stopped early (sampler)") || tr.Metrics["completed"] < 16 || tr.Metrics["completed"] >= 96 || tr.GPUSeconds <= 0 {
			t.Errorf("pruned trial %d: front %v, reason %q, %v requests measured, %v GPU-seconds",
				tr.TrialNumber, tr.ParetoOptimal, tr.Reason, tr.Metrics["completed"], tr.GPUSeconds)
		}
		if tr.TrialNumber == 0 {
			t.Errorf("the baseline was pruned")
		}
	}
	t.Logf("%d of %d trials pruned; %.4f GPU-hours", pruned, res.NTrials, res.GPUHours)
	if pruned == 0 || res.Counts.Pruned != pruned {
		t.Fatalf("pruned %d trials (counts say %d): early stopping stopped nothing", pruned, res.Counts.Pruned)
	}
	if math.Abs(res.GPUHours-gpuSeconds/3600) > 1e-9 || res.GPUHours <= 0 {
		t.Errorf("gpu_hours %v, trials' gpu_seconds sum to %v s", res.GPUHours, gpuSeconds)
	}
	if !strings.Contains(out, "pruned") || !strings.Contains(out, "GPU time:") {
		t.Errorf("console does not report pruned trials and GPU time:\n%s", out)
	}
}
