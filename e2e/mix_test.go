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

	"github.com/sgtune/sgtune/pkg/study"
)

// countingSim writes a server command that records every launch (one line
// per process) and then execs sglang-sim: the user's path of a custom
// model.server_command, with a launch count the test can read.
func countingSim(t *testing.T, dir string) (command, launches string) {
	t.Helper()
	launches = filepath.Join(dir, "launches")
	command = writeFile(t, dir, "counting-sim.sh", fmt.Sprintf(`#!/bin/sh
echo "$$ $*" >> %s
SGTUNE_SIM_TIME_SCALE=0.02 exec %s sim "$@"
`, launches, sgtuneBin))
	return command, launches
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.Count(string(data), "\n")
}

type mixResults struct {
	NTrials     int `json:"n_trials"`
	ParetoFront []struct {
		TrialNumber        int                           `json:"trial_number"`
		Objectives         map[string]float64            `json:"objectives"`
		WorkloadObjectives map[string]map[string]float64 `json:"workload_objectives"`
	} `json:"pareto_front"`
	Trials []struct {
		TrialNumber     int                           `json:"trial_number"`
		State           string                        `json:"state"`
		Feasible        bool                          `json:"feasible"`
		ParetoOptimal   bool                          `json:"pareto_optimal"`
		Objectives      map[string]float64            `json:"objectives"`
		Metrics         map[string]float64            `json:"metrics"`
		WorkloadMetrics map[string]map[string]float64 `json:"workload_metrics"`
	} `json:"trials"`
}

// TestStudyOverAWorkloadMix runs a whole study whose trials each serve two
// workloads (short chat turns and long-prompt RAG) on one launch: every
// result keeps both workloads' metrics, the headline metrics aggregate them
// as the spec says (TTFT: the worst workload's; throughput: weighted 0.7 /
// 0.3), and the front is the non-dominated set of those aggregates.
func TestStudyOverAWorkloadMix(t *testing.T) {
	dir := t.TempDir()
	command, launches := countingSim(t, dir)
	spec := writeFile(t, dir, "mix.yaml", fmt.Sprintf(`study_name: mix-e2e
n_trials: 8
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
workload: {num_prompts: 24, random_input_len: 128, random_output_len: 16, max_concurrency: 8, warmup_requests: 1}
workloads:
  - {name: chat, weight: 0.7}
  - {name: rag, weight: 0.3, num_prompts: 12, random_input_len: 2048, random_output_len: 8, max_concurrency: 4}
objectives:
  - {name: ttft, metric: mean_ttft_ms, scale: 0.001, direction: minimize, unit: s, aggregate: worst}
  - {name: tps, metric: output_throughput, direction: maximize, unit: tok/s}
sampler: {startup_trials: 4}
`, command))
	parsed, err := study.LoadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--spec", spec, "--runners", "2", "--gpus", "8",
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"), "--quiet")
	if err != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "Workload chat: ttft=") || !strings.Contains(out, "Workload rag: ttft=") {
		t.Errorf("the console front does not show each workload:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res mixResults
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.NTrials != 8 {
		t.Fatalf("n_trials = %d, want 8", res.NTrials)
	}
	if n := countLines(t, launches); n != res.NTrials {
		t.Errorf("%d server launches for %d benchmarked trials: a mix must run on one launch per trial", n, res.NTrials)
	}

	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	var feasible [][]float64
	var feasibleNums []int
	complete := 0
	for _, tr := range res.Trials {
		if tr.State != "COMPLETE" {
			continue
		}
		complete++
		chat, rag := tr.WorkloadMetrics["chat"], tr.WorkloadMetrics["rag"]
		if chat["completed"] != 24 || rag["completed"] != 12 {
			t.Fatalf("trial %d: workload metrics %v, want 24 chat and 12 rag requests", tr.TrialNumber, tr.WorkloadMetrics)
		}
		if rag["mean_ttft_ms"] <= chat["mean_ttft_ms"] {
			t.Errorf("trial %d: rag's 2048-token prompts (TTFT %.2f ms) are not slower to first token than chat's 128 (%.2f ms)",
				tr.TrialNumber, rag["mean_ttft_ms"], chat["mean_ttft_ms"])
		}
		if tr.Metrics["completed"] != 36 ||
			!near(tr.Metrics["mean_ttft_ms"], math.Max(chat["mean_ttft_ms"], rag["mean_ttft_ms"])) ||
			!near(tr.Metrics["output_throughput"], 0.7*chat["output_throughput"]+0.3*rag["output_throughput"]) {
			t.Errorf("trial %d: headline completed %v, mean_ttft_ms %v, output_throughput %v do not aggregate chat %v / rag %v",
				tr.TrialNumber, tr.Metrics["completed"], tr.Metrics["mean_ttft_ms"], tr.Metrics["output_throughput"], chat, rag)
		}
		if tr.Feasible {
			feasible = append(feasible, []float64{tr.Objectives["ttft"], tr.Objectives["tps"]})
			feasibleNums = append(feasibleNums, tr.TrialNumber)
		}
	}
	if complete < 4 {
		t.Fatalf("only %d of 8 trials completed", complete)
	}
	want := map[int]bool{}
	for _, i := range study.ParetoFront(feasible, parsed.Directions()) {
		want[feasibleNums[i]] = true
	}
	if len(res.ParetoFront) != len(want) {
		t.Fatalf("front has %d members, the aggregates' non-dominated set %d (%v)", len(res.ParetoFront), len(want), want)
	}
	for _, m := range res.ParetoFront {
		if !want[m.TrialNumber] {
			t.Errorf("front member %d is dominated on the mix's aggregates", m.TrialNumber)
		}
		chat, rag := m.WorkloadObjectives["chat"], m.WorkloadObjectives["rag"]
		if chat == nil || rag == nil {
			t.Fatalf("front member %d lacks a workload's objectives: %v", m.TrialNumber, m.WorkloadObjectives)
		}
		if !near(m.Objectives["ttft"], math.Max(chat["ttft"], rag["ttft"])) || !near(m.Objectives["tps"], 0.7*chat["tps"]+0.3*rag["tps"]) {
			t.Errorf("front member %d: objectives %v are not the mix of chat %v and rag %v", m.TrialNumber, m.Objectives, chat, rag)
		}
	}
}
