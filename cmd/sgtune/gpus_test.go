package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/services/runner"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

func TestGPUs_simulated_table_and_json(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"gpus", "--gpus", "2", "--gpu-model", "h200", "--json"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep runner.GPUReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source == runner.GPUSourceNVML {
		t.Skip("NVML present: the simulated path is not taken")
	}
	if rep.Source != runner.GPUSourceSimulated || len(rep.GPUs) != 2 || rep.GPUs[1].Name != "NVIDIA H200" || rep.Note == "" {
		t.Fatalf("report %+v", rep)
	}

	stdout.Reset()
	if code := run(context.Background(), []string{"gpus", "--gpus", "1"}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout.String(), "NVIDIA H100 80GB HBM3") || !strings.Contains(stdout.String(), "source: simulated") {
		t.Fatalf("table:\n%s", stdout.String())
	}
}

func TestGPUs_without_NVML_or_simulation_fails(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"gpus"}, func(string) string { return "" }, &stdout, &stderr)
	rep, err := runner.InspectGPUs(runner.GPUQuery{Model: "H100"})
	if err == nil {
		t.Skipf("NVML present (%d GPUs)", len(rep.GPUs))
	}
	if code != 1 || !strings.Contains(stderr.String(), "NVML unavailable") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
