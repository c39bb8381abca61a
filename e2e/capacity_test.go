package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
)

// TestCapacityPreset runs deploy/specs/capacity.yaml (what `make
// run-capacity` runs) through a launch-counting server command around
// sglang-sim: one launch per trial (the whole capacity search on one
// server), every completed trial's capacity and per-GPU throughput at a
// level meeting the SLO, and a front ranked per GPU under the SLOs.
func TestCapacityPreset(t *testing.T) {
	dir := t.TempDir()
	command, launches := countingSim(t, dir)
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "specs", "capacity.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "\nmodel:\n", "\nmodel:\n  server_command: ["+command+"]\n", 1)
	spec := writeFile(t, dir, "capacity.yaml", text)
	parsed, err := study.LoadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--spec", spec, "--n-trials", "6", "--runners", "2", "--gpus", "8",
		"--startup-timeout", "60s", "--benchmark-timeout", "120s",
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"), "--quiet")
	if err != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	var res struct {
		NTrials     int `json:"n_trials"`
		ParetoFront []struct {
			TrialNumber int                `json:"trial_number"`
			Objectives  map[string]float64 `json:"objectives"`
			Capacity    *struct {
				Level                  float64  `json:"level"`
				OutputThroughputPerGPU *float64 `json:"output_throughput_per_gpu"`
				GPUs                   int      `json:"gpus"`
			} `json:"capacity"`
			Curve []struct {
				Level float64 `json:"level"`
			} `json:"curve"`
		} `json:"pareto_front"`
		Curves *struct {
			Axis string             `json:"axis"`
			SLO  map[string]float64 `json:"slo"`
		} `json:"curves"`
		Trials []struct {
			TrialNumber int                `json:"trial_number"`
			State       string             `json:"state"`
			Feasible    bool               `json:"feasible"`
			Objectives  map[string]float64 `json:"objectives"`
			Metrics     map[string]float64 `json:"metrics"`
			LoadPoints  []map[string]any   `json:"load_points"`
		} `json:"trials"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if res.NTrials != 6 {
		t.Fatalf("n_trials = %d", res.NTrials)
	}
	if n := countLines(t, launches); n != res.NTrials {
		t.Errorf("%d server launches for %d benchmarked trials: a capacity search runs on one launch", n, res.NTrials)
	}
	if res.Curves == nil || res.Curves.Axis != "max_concurrency" || res.Curves.SLO["p99_ttft_ms"] != 500 || res.Curves.SLO["p99_tpot_ms"] != 50 {
		t.Errorf("curves info %+v", res.Curves)
	}
	var pts [][]float64
	var nums []int
	for _, tr := range res.Trials {
		if tr.State != "COMPLETE" {
			continue
		}
		m := tr.Metrics
		if len(tr.LoadPoints) < 2 || m["gpus"] < 1 || m["capacity_levels"] < 2 {
			t.Errorf("trial %d: %d load points, gpus %v, %v levels", tr.TrialNumber, len(tr.LoadPoints), m["gpus"], m["capacity_levels"])
		}
		perGPU := m["capacity_output_throughput"] / m["gpus"]
		if math.Abs(m["capacity_output_throughput_per_gpu"]-perGPU) > 1e-6*perGPU {
			t.Errorf("trial %d: capacity_output_throughput_per_gpu %v, capacity throughput / gpus %v", tr.TrialNumber, m["capacity_output_throughput_per_gpu"], perGPU)
		}
		if !tr.Feasible {
			continue
		}
		if m["capacity_concurrency"] < 1 || m["p99_ttft_ms"] > 500 || m["p99_tpot_ms"] > 50 {
			t.Errorf("feasible trial %d: capacity %v at p99 TTFT %v ms, p99 TPOT %v ms", tr.TrialNumber, m["capacity_concurrency"], m["p99_ttft_ms"], m["p99_tpot_ms"])
		}
		pts = append(pts, []float64{tr.Objectives["tps_per_gpu"], tr.Objectives["p99_ttft"]})
		nums = append(nums, tr.TrialNumber)
	}
	if len(pts) == 0 {
		t.Fatalf("no feasible trial among 6:\n%s", errOut)
	}
	want := map[int]bool{}
	for _, i := range study.ParetoFront(pts, parsed.Directions()) {
		want[nums[i]] = true
	}
	if len(res.ParetoFront) != len(want) {
		t.Fatalf("front of %d, want the %d non-dominated per-GPU capacities %v", len(res.ParetoFront), len(want), want)
	}
	for _, m := range res.ParetoFront {
		if !want[m.TrialNumber] {
			t.Errorf("front member %d is dominated per GPU", m.TrialNumber)
		}
		if m.Capacity == nil || m.Capacity.Level < 1 || m.Capacity.OutputThroughputPerGPU == nil ||
			math.Abs(*m.Capacity.OutputThroughputPerGPU-m.Objectives["tps_per_gpu"]) > 1e-9 || len(m.Curve) < 2 {
			t.Errorf("front member %d: capacity %+v, %d curve points", m.TrialNumber, m.Capacity, len(m.Curve))
		}
	}
	if !strings.Contains(out, "Capacity: ") || !strings.Contains(out, "concurrent requests under the SLO") {
		t.Errorf("the console front does not print capacities:\n%s", out)
	}
}
