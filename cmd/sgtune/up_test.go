package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	code := run(ctx, []string{"up", "--spec", spec, "--device-num", "2", "--data-dir", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--quiet"}, func(string) string { return "" }, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "not installed") || !strings.Contains(errb.String(), "--sim") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
