package study_test

import (
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/study"
)

func TestIsKnownMetric(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given    string
		expected bool
	}{
		{"mean_ttft_ms", true},
		{"p99_tpot_ms", true},
		{"p99.9_itl_ms", true},
		{"max_itl_ms", true},
		{"median_e2e_latency_ms", true},
		{"output_throughput", true},
		{"output_throughput_per_gpu", true},
		{"capacity_output_throughput_per_gpu", true},
		{"capacity_goodput_per_gpu", true},
		{"capacity_concurrency", true},
		{"goodput_per_gpu", true},
		{"gpus", true},
		{"startup_seconds", true},
		{"energy_per_output_token", true},
		{"ttft", false},
		{"p99_ttft", false},
		{"mean_ttft_s", false},
		{"output_throughput_per_gpu_per_gpu", false},
		{"mean_ttft_ms_per_gpu", false},
		{"tps", false},
	}
	for _, tt := range tests {
		if got := study.IsKnownMetric(tt.given); got != tt.expected {
			t.Errorf("IsKnownMetric(%q) = %v, want %v", tt.given, got, tt.expected)
		}
	}
}

func TestAddPerGPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenMetrics  map[string]float64
		givenGPUs     int
		expected      map[string]float64
		expectedUnits map[string]string
	}{
		{
			name:         "every rate gets its twin, latencies do not",
			givenMetrics: map[string]float64{"output_throughput": 8000, "request_throughput": 4, "goodput": 2, "mean_ttft_ms": 50, "capacity_output_throughput": 6000, "capacity_concurrency": 64},
			givenGPUs:    8,
			expected: map[string]float64{"output_throughput": 8000, "request_throughput": 4, "goodput": 2, "mean_ttft_ms": 50,
				"capacity_output_throughput": 6000, "capacity_concurrency": 64,
				"output_throughput_per_gpu": 1000, "request_throughput_per_gpu": 0.5, "goodput_per_gpu": 0.25,
				"capacity_output_throughput_per_gpu": 750, "capacity_concurrency_per_gpu": 8, "gpus": 8},
			expectedUnits: map[string]string{"output_throughput": "tok/s", "output_throughput_per_gpu": "tok/s/GPU", "gpus": "GPU"},
		},
		{
			name:          "one GPU: the twin equals the figure",
			givenMetrics:  map[string]float64{"output_throughput": 1200},
			givenGPUs:     1,
			expected:      map[string]float64{"output_throughput": 1200, "output_throughput_per_gpu": 1200, "gpus": 1},
			expectedUnits: map[string]string{"output_throughput": "tok/s", "output_throughput_per_gpu": "tok/s/GPU", "gpus": "GPU"},
		},
		{
			name:          "no GPU count: nothing added",
			givenMetrics:  map[string]float64{"output_throughput": 1200},
			givenGPUs:     0,
			expected:      map[string]float64{"output_throughput": 1200},
			expectedUnits: map[string]string{"output_throughput": "tok/s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			units := map[string]string{"output_throughput": "tok/s"}
			study.AddPerGPU(tt.givenMetrics, units, tt.givenGPUs)
			if len(tt.givenMetrics) != len(tt.expected) {
				t.Fatalf("metrics = %v, want %v", tt.givenMetrics, tt.expected)
			}
			for k, v := range tt.expected {
				if got, ok := tt.givenMetrics[k]; !ok || got != v {
					t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
				}
			}
			for k, v := range tt.expectedUnits {
				if units[k] != v {
					t.Errorf("unit of %s = %q, want %q", k, units[k], v)
				}
			}
			// Every name AddPerGPU writes is one a spec may name.
			for k := range tt.givenMetrics {
				if !study.IsKnownMetric(k) {
					t.Errorf("AddPerGPU wrote %s, which IsKnownMetric does not know", k)
				}
			}
		})
	}
}

func TestObjectivesMayNameThePerGPUFigures(t *testing.T) {
	t.Parallel()
	s := study.Default()
	s.Objectives = []study.Objective{
		{Name: "tps_per_gpu", Metric: "output_throughput_per_gpu", Direction: study.Maximize},
		{Name: "cap_per_gpu", Metric: "capacity_output_throughput_per_gpu", Direction: study.Maximize},
	}
	s.Constraints = []study.Constraint{{Metric: "gpus", Max: new(8.0)}}
	if err := s.CheckMetricNames(); err != nil {
		t.Fatal(err)
	}
	s.Objectives[0].Metric = "output_throughput_per_gpus"
	if err := s.CheckMetricNames(); err == nil || !strings.Contains(err.Error(), `did you mean "output_throughput_per_gpu"`) {
		t.Fatalf("typo: %v", err)
	}
}
