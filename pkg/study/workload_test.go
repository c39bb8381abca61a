package study_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func TestWorkloadSpecErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, given string
		expected    []string
	}{
		{"unknown dataset", "workload: {dataset: lmsys}\n", []string{"workload.dataset", "lmsys", "mooncake"}},
		{"mooncake without a path", "workload: {dataset: mooncake}\n", []string{"workload.dataset_path", "mooncake"}},
		{"mooncake with a rate", "workload: {dataset: mooncake, dataset_path: t.jsonl, request_rate: 4}\n", []string{"workload.request_rate", "arrival times"}},
		{"zero slowdown", "workload: {dataset: mooncake, dataset_path: t.jsonl, mooncake_slowdown_factor: 0}\n", []string{"workload.mooncake_slowdown_factor"}},
		{"group size 0", "workload: {dataset: generated-shared-prefix, gsp_prompts_per_group: 0}\n", []string{"workload.gsp_prompts_per_group", "at least 1"}},
		{"no groups", "workload: {dataset: generated-shared-prefix, gsp_num_groups: 0}\n", []string{"workload.gsp_num_groups"}},
		{"sharegpt without a path", "workload: {dataset: sharegpt}\n", []string{"workload.dataset_path", "sharegpt"}},
		{"negative sharegpt output", "workload: {dataset: sharegpt, dataset_path: s.json, sharegpt_output_len: -1}\n", []string{"workload.sharegpt_output_len"}},
		{"ladder not increasing", "workload: {load: {concurrency: [4, 64, 16]}}\n", []string{"workload.load.concurrency[2]", "increase"}},
		{"ladder with equal levels", "workload: {load: {request_rates: [1, 1]}, request_rate: 1}\n", []string{"workload.load.request_rates[1]"}},
		{"ladder level 0", "workload: {load: {concurrency: [0, 4]}}\n", []string{"workload.load.concurrency[0]", "at least 1"}},
		{"ladder both kinds", "workload: {load: {concurrency: [4], request_rates: [1]}}\n", []string{"workload.load", "not both"}},
		{"empty ladder", "workload: {load: {}}\n", []string{"workload.load", "levels"}},
		{"ladder without the default headline", "workload: {load: {concurrency: [8, 32]}}\n", []string{"workload.load.headline", "workload.max_concurrency", "64"}},
		{"headline not a level", "workload: {load: {concurrency: [8, 32], headline: 16}}\n", []string{"workload.load.headline", "16"}},
		{"rate ladder on a trace", "workload: {dataset: mooncake, dataset_path: t.jsonl, load: {request_rates: [1, 2], headline: 1}}\n", []string{"workload.load.request_rates", "arrival times"}},
		{"capacity with load", "workload: {load: {concurrency: [64]}, capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity", "workload.load"}},
		{"capacity max below 1", "workload: {capacity: {search: concurrency, max: 0, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.max", "at least 1"}},
		{"capacity rate max below 1", "workload: {capacity: {search: request_rate, max: 0.5, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.max"}},
		{"capacity unknown search", "workload: {capacity: {search: qps, max: 8, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.search", "qps"}},
		{"capacity fractional concurrency", "workload: {capacity: {search: concurrency, max: 8.5, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.max", "whole"}},
		{"capacity min above max", "workload: {capacity: {search: concurrency, max: 8, min: 16, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.min"}},
		{"slo on an unknown metric", "workload: {capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500, p99_latency_ms: 9}}}\n", []string{"workload.capacity.slo.p99_latency_ms", "unknown metric", "p99_e2e_latency_ms"}},
		{"slo not positive", "workload: {capacity: {search: concurrency, max: 64, slo: {p99_tpot_ms: 0}}}\n", []string{"workload.capacity.slo.p99_tpot_ms", "positive"}},
		{"no slo", "workload: {capacity: {search: concurrency, max: 64}}\n", []string{"workload.capacity.slo"}},
		{"capacity rate search on a trace", "workload: {dataset: mooncake, dataset_path: t.jsonl, capacity: {search: request_rate, max: 8, slo: {p99_ttft_ms: 500}}}\n", []string{"workload.capacity.search"}},
		{"unknown capacity key", "workload: {capacity: {search: concurrency, max: 64, slos: {}}}\n", []string{"workload.capacity.slos", "unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := study.Parse("study.yaml", []byte(tt.given))
			if !errors.Is(err, study.ErrInvalidSpec) {
				t.Fatalf("got %v, want a spec error", err)
			}
			for _, w := range tt.expected {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestWorkloadSpecsThatAreValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, given string
		check       func(events.Workload) bool
	}{
		{"ladder with the default headline", "workload: {load: {concurrency: [4, 16, 64, 256]}}\n",
			func(w events.Workload) bool { return w.Load != nil && len(w.Load.Concurrency) == 4 }},
		{"rate ladder with a headline", "workload: {load: {request_rates: [1, 2.5, 4], headline: 2.5}}\n",
			func(w events.Workload) bool { return w.Load.Headline == 2.5 }},
		{"capacity search", "workload: {capacity: {search: request_rate, max: 32, min: 0.5, slo: {p99_ttft_ms: 500, p99_tpot_ms: 50}}}\n",
			func(w events.Workload) bool { return w.Capacity.SLO["p99_tpot_ms"] == 50 && w.Capacity.Min == 0.5 }},
		{"shared prefix with bench_serving's defaults", "workload: {dataset: generated-shared-prefix}\n",
			func(w events.Workload) bool {
				return w.GSPNumGroups == 64 && w.GSPPromptsPerGroup == 16 && w.GSPSystemPromptLen == 2048
			}},
		{"mooncake", "workload: {dataset: mooncake, dataset_path: trace.jsonl, mooncake_slowdown_factor: 2}\n",
			func(w events.Workload) bool { return w.MooncakeSlowdownFactor == 2 }},
		{"sharegpt", "workload: {dataset: sharegpt, dataset_path: sg.json, sharegpt_output_len: 128}\n",
			func(w events.Workload) bool { return w.SharegptOutputLen == 128 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := study.Parse("study.yaml", []byte(tt.given))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s.Workload) {
				t.Fatalf("workload %+v", s.Workload)
			}
			// The spec survives the sgtune_studies bucket.
			data, err := s.ToJSON()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := study.FromJSON(data); err != nil {
				t.Fatalf("stored spec: %v", err)
			}
		})
	}
}

func TestCapacityWithoutAnyLevelMeetingItsSLOIsInfeasible(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("study.yaml", []byte("workload: {capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Violations(map[string]float64{"capacity_concurrency": 0, "mean_ttft_ms": 900, "output_throughput": 10}); len(v) != 1 || !strings.Contains(v[0], "capacity SLO") {
		t.Fatalf("violations %q", v)
	}
	if v := s.Violations(map[string]float64{"capacity_concurrency": 12}); len(v) != 0 {
		t.Fatalf("violations %q", v)
	}
}
