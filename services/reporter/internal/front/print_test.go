package front

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/study"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update once): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPrintGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  study.Spec
		given []Outcome
	}{
		{
			name: "console_default.golden",
			spec: testSpec(),
			given: func() []Outcome {
				base := complete(0, 50, 1000)
				base.Params = map[string]any{"tp_size": nil, "schedule_policy": "fcfs"}
				fast := complete(3, 25, 2500)
				fast.Params = map[string]any{
					"tp_size": float64(1), "attention_backend": "flashinfer", "chunked_prefill_size": nil,
					"enable_mixed_chunk": true, "disable_overlap_schedule": false, "schedule_policy": "lpm",
				}
				fast.LaunchCommand = []string{"python3", "-m", "sglang.launch_server", "--model-path", "meta-llama/Llama-3.1-8B-Instruct",
					"--tp-size", "1", "--attention-backend", "flashinfer", "--enable-mixed-chunk", "--schedule-policy", "lpm", "--host", "127.0.0.1", "--port", "30001"}
				return []Outcome{base, failed(1, "oom"), rejected(2, "seed.gpu_count"), fast, complete(4, 20, 1800),
					rejected(5, "seed.gpu_count", "seed.pp_dp_cap"), failed(6, "timeout"), complete(7, 60, 900)}
			}(),
		},
		{
			name: "console_custom.golden",
			spec: func() study.Spec {
				s := testSpec()
				s.Objectives = []study.Objective{
					{Name: "p99_ttft", Metric: "p99_ttft_ms", Scale: 1, Direction: study.Minimize, Unit: "ms"},
					{Name: "tps", Metric: "output_throughput", Scale: 1, Direction: study.Maximize, Unit: "tok/s"},
				}
				return s
			}(),
			given: []Outcome{failed(0, "crash"), complete(1, 30, 1500), complete(2, 20, 1000)},
		},
		{
			name: "console_empty.golden",
			spec: testSpec(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReport(testStudy, tc.spec, t0)
			fold(t, r, tc.given...)
			var buf bytes.Buffer
			if err := Print(&buf, r.Front()); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

// TestPrintSeedLines pins the lines users and scripts of the seed rely on.
func TestPrintSeedLines(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	o := complete(0, 25, 2500)
	o.Params = map[string]any{"tp_size": float64(1), "attention_backend": "flashinfer", "page_size": nil, "enable_torch_compile": false}
	fold(t, r, o)
	var buf bytes.Buffer
	if err := Print(&buf, r.Front()); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		strings.Repeat("=", 80), "Optimization Results", strings.Repeat("=", 80), "",
		"Number of finished trials: 1", "Number of Pareto optimal solutions: 1", "",
		"Pareto Front (Best Trade-offs between TTFT and TPS):", strings.Repeat("-", 80), "",
		"Solution 1:", "  TTFT: 0.0250 seconds", "  TPS: 2500.00 tokens/sec", "  Parameters:",
		"    tp_size: 1", "    attention_backend: flashinfer",
	}, "\n")
	if !strings.HasPrefix(buf.String(), want) {
		t.Fatalf("console output does not start like the seed's:\n%s", buf.String())
	}
	for _, line := range []string{"    page_size: None", "    enable_torch_compile: False"} {
		if !strings.Contains(buf.String(), line+"\n") {
			t.Fatalf("missing %q in:\n%s", line, buf.String())
		}
	}
}
