package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner"
)

func TestUpBadInputIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	badSpec := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badSpec, []byte("space:\n  tp_sise: [1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badTrace := filepath.Join(dir, "trace.jsonl")
	if err := os.WriteFile(badTrace, []byte("{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	traceSpec := filepath.Join(dir, "trace.yaml")
	if err := os.WriteFile(traceSpec, []byte("workload: {dataset: mooncake, dataset_path: "+badTrace+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown parameter in the spec", []string{"--spec", badSpec}, "space.tp_sise"},
		{"a trace line that is not JSON", []string{"--spec", traceSpec}, "trace.jsonl: line 2"},
		{"exec without a command", []string{"--backend", "exec"}, "--benchmark-cmd"},
		{"unknown backend", []string{"--backend", "docker"}, "want sglang or exec"},
		{"unknown sampler", []string{"--sampler", "magic"}, "sampler.algorithm"},
		{"no runners", []string{"--runners", "0"}, "--runners"},
		{"zero trials", []string{"--n-trials", "0"}, "--n-trials must be at least 1, got 0"},
		{"negative trials", []string{"--n-trials", "-3"}, "--n-trials must be at least 1, got -3"},
		{"negative failure streak", []string{"--max-consecutive-failures", "-1"}, "--max-consecutive-failures"},
		{"negative startup timeout", []string{"--startup-timeout", "-1s"}, "--startup-timeout"},
		{"malformed benchmark timeout", []string{"--benchmark-timeout", "soon"}, "benchmark-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"up", "--data-dir", filepath.Join(dir, "data"), "--quiet"}, tt.args...)
			code := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
}

func TestUpTimeoutFlagsOverrideTheSpec(t *testing.T) {
	spec, err := loadSpec(upOptions{specFile: "../../deploy/specs/quickstart.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	// The shipped spec fits a real model load ...
	if spec.Model.StartupTimeout.D() < 5*time.Minute || spec.Model.CompileStartupTimeout.D() < spec.Model.StartupTimeout.D() {
		t.Fatalf("quickstart startup timeouts %s / %s do not fit a real model load", spec.Model.StartupTimeout.D(), spec.Model.CompileStartupTimeout.D())
	}
	// ... and make run's flags shorten them for the simulator.
	spec, err = loadSpec(upOptions{specFile: "../../deploy/specs/quickstart.yaml", startupTimeout: time.Minute, benchmarkTimeout: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Model.StartupTimeout.D() != time.Minute || spec.Model.CompileStartupTimeout.D() != time.Minute || spec.Model.BenchmarkTimeout.D() != 45*time.Second {
		t.Fatalf("timeouts = %+v", spec.Model)
	}
}

func TestUpFailsFastWithoutTheServerCommand(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "study.yaml")
	if err := os.WriteFile(spec, []byte("model:\n  server_command: [sgtune-no-such-command, -m, sglang.launch_server]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"up", "--spec", spec, "--gpus", "2", "--data-dir", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--quiet"}, func(string) string { return "" }, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "not installed") || !strings.Contains(errb.String(), "--sim") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// A binary without NVML must not launch real servers on GPUs it invented:
// without --gpus (or --sim) it refuses before starting anything.
func TestUpWithARealBackendAndNoNVMLRefusesToStart(t *testing.T) {
	if _, err := runner.InspectGPUs(runner.GPUQuery{}); err == nil {
		t.Skip("NVML is present here")
	}
	dir := t.TempDir()
	for _, backend := range [][]string{{}, {"--backend", "exec", "--benchmark-cmd", "true"}} {
		var out, errb bytes.Buffer
		args := append([]string{"up", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--quiet"}, backend...)
		code := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "no NVML") || !strings.Contains(errb.String(), "--gpus N") {
			t.Fatalf("%v: exit %d, stderr %q", backend, code, errb.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "nats")); !os.IsNotExist(err) {
			t.Fatalf("%v: the embedded server started before the refusal (%v)", backend, err)
		}
	}
}

func TestUpSplitsTheHostGPUsBetweenRunners(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		expected string
	}{
		{"simulated host", []string{"--gpus", "8", "--runners", "2"}, "8 GPUs (simulated, NVIDIA H100 80GB HBM3); runner 0: 0,1,2,3; runner 1: 4,5,6,7"},
		{"restricted by --gpu-ids", []string{"--gpus", "8", "--gpu-ids", "1,2,5", "--runners", "2"}, "3 GPUs (simulated, NVIDIA H100 80GB HBM3); runner 0: 1,2; runner 1: 5"},
	}
	for _, tt := range tests {
		var errb bytes.Buffer
		h, err := splitHostGPUs(upOptions{runners: 2, gpuModel: "H100", gpus: 8, gpuIDs: argAfter(tt.args, "--gpu-ids")}, study.Default(), func(string) string { return "" }, &errb)
		if err != nil || !strings.Contains(errb.String(), tt.expected) {
			t.Fatalf("%s: %v, said %q; want %q", tt.name, err, errb.String(), tt.expected)
		}
		var c0 runner.Config
		h.apply(&c0, 0)
		if c0.GPUs != 8 || c0.GPUIDs == "" {
			t.Fatalf("%s: runner 0 config %+v", tt.name, c0)
		}
	}
	var errb bytes.Buffer
	_, err := splitHostGPUs(upOptions{runners: 3, gpuModel: "H100", gpus: 2}, study.Default(), func(string) string { return "" }, &errb)
	if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "cannot split 2 GPUs between 3 runners") {
		t.Fatalf("more runners than GPUs: exit %d, %v", code, err)
	}
	_, err = splitHostGPUs(upOptions{runners: 1, gpuModel: "H100", gpus: 4, gpuIDs: "3,9"}, study.Default(), func(string) string { return "" }, &errb)
	if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "no GPU 9") {
		t.Fatalf("a GPU id the host lacks: exit %d, %v", code, err)
	}
}

func argAfter(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}
