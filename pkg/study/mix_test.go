package study_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

const mixSpec = `
workload: {num_prompts: 128, max_concurrency: 32}
workloads:
  - {name: chat, weight: 0.7, random_input_len: 512, random_output_len: 256}
  - name: rag
    weight: 0.3
    random_input_len: 4096
    random_output_len: 128
    max_concurrency: 8
`

func TestMixEntriesStartFromTheBaseWorkload(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("mix.yaml", []byte(mixSpec))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Workloads) != 2 {
		t.Fatalf("workloads = %+v", s.Workloads)
	}
	chat, rag := s.Workloads[0], s.Workloads[1]
	if chat.Name != "chat" || chat.Weight != 0.7 || chat.RandomInputLen != 512 || chat.NumPrompts != 128 || chat.MaxConcurrency != 32 {
		t.Errorf("chat = %+v, want the base's num_prompts and max_concurrency with its own lengths", chat)
	}
	if rag.MaxConcurrency != 8 || rag.RandomOutputLen != 128 || rag.Backend != "sglang" || rag.VocabSize != 32000 {
		t.Errorf("rag = %+v, want its own concurrency over the defaults", rag)
	}
	// The JSON form (the studies bucket) round-trips.
	data, err := s.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := study.FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Workloads[1].Name != "rag" || back.Workloads[1].RandomInputLen != 4096 || back.Workloads[1].Weight != 0.3 {
		t.Errorf("round trip lost the mix: %+v", back.Workloads)
	}
}

func TestMixWeightDefaultsToOne(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("mix.yaml", []byte("workloads: [{name: a}, {name: b, max_concurrency: 4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Workloads[0].Weight != 1 || s.Workloads[1].Weight != 1 || s.Workloads[1].MaxConcurrency != 4 {
		t.Fatalf("workloads = %+v", s.Workloads)
	}
}

func TestMixEntriesDoNotShareTheBasesCapacity(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("mix.yaml", []byte(`
workload: {capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500}}}
workloads:
  - {name: a}
  - {name: b, capacity: {max: 16, slo: {p99_ttft_ms: 200}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Workload.Capacity.Max != 64 || s.Workloads[0].Capacity.Max != 64 || s.Workloads[1].Capacity.Max != 16 {
		t.Fatalf("capacities: base %+v, a %+v, b %+v", s.Workload.Capacity, s.Workloads[0].Capacity, s.Workloads[1].Capacity)
	}
	if s.Workload.Capacity.SLO["p99_ttft_ms"] != 500 || s.Workloads[1].Capacity.SLO["p99_ttft_ms"] != 200 {
		t.Fatalf("the SLO map is shared: base %v, b %v", s.Workload.Capacity.SLO, s.Workloads[1].Capacity.SLO)
	}
}

func TestMixSpecErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, given string
		expected    []string
	}{
		{"weights sum to zero", "workloads: [{name: a, weight: 0}, {name: b, weight: 0}]\n", []string{"workloads", "sum to 0", "positive"}},
		{"negative weight", "workloads: [{name: a, weight: -1}, {name: b, weight: 2}]\n", []string{"workloads[0].weight", ">= 0"}},
		{"weight not a number", "workloads: [{name: a, weight: lots}]\n", []string{"workloads[0].weight", "number"}},
		{"no name", "workloads: [{weight: 1}]\n", []string{"workloads[0].name"}},
		{"duplicate names", "workloads: [{name: a}, {name: a}]\n", []string{"workloads[1].name", "workloads[0]"}},
		{"unknown key in an entry", "workloads: [{name: a, num_prompt: 3}]\n", []string{"workloads[0].num_prompt", "unknown key"}},
		{"bad entry workload", "workloads: [{name: a}, {name: b, dataset: lmsys}]\n", []string{"workloads[1].dataset", "lmsys"}},
		{"bad entry ladder", "workloads: [{name: a, load: {concurrency: [8, 4]}}]\n", []string{"workloads[0].load.concurrency[1]"}},
		{"unknown aggregate", "objectives: [{name: ttft, metric: mean_ttft_ms, direction: minimize, aggregate: median}]\n", []string{"objectives[0].aggregate", "median", "weighted", "worst"}},
		{"weighted objective on an SLO metric", `
workloads: [{name: a}, {name: b}]
objectives: [{name: p99, metric: p99_ttft_ms, direction: minimize, aggregate: weighted}]
constraints: [{metric: p99_ttft_ms, max: 500}]
`, []string{"objectives[0].aggregate", "constraints[0]", "p99_ttft_ms"}},
		{"two-sided constraint on a mix", `
workloads: [{name: a}]
constraints: [{metric: mean_ttft_ms, max: 500, min: 1}]
`, []string{"constraints[0]", "not both"}},
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

func TestMixAggregatesFollowObjectivesAndSLOs(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("mix.yaml", []byte(`
workload: {capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500}}}
workloads: [{name: a}, {name: b}]
objectives:
  - {name: tps, metric: output_throughput, direction: maximize}
  - {name: worst_rps, metric: request_throughput, direction: maximize, aggregate: worst}
  - {name: ttft, metric: mean_ttft_ms, direction: minimize, aggregate: worst}
  - {name: p99, metric: p99_tpot_ms, direction: minimize}
constraints: [{metric: p99_tpot_ms, max: 50}, {metric: goodput, min: 1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"output_throughput":    events.AggregateWeighted,
		"request_throughput":   events.AggregateMin,
		"mean_ttft_ms":         events.AggregateMax,
		"p99_tpot_ms":          events.AggregateMax, // follows its SLO
		"goodput":              events.AggregateMin,
		"capacity_concurrency": events.AggregateMin,
	}
	got := s.MixAggregates()
	for m, how := range want {
		if got[m] != how {
			t.Errorf("%s aggregates as %q, want %q", m, got[m], how)
		}
	}
	if len(got) != len(want) {
		t.Errorf("aggregates = %v, want %v", got, want)
	}
	if d := study.Default(); d.MixAggregates() != nil {
		t.Error("a spec without a mix has aggregates")
	}
}

func TestAggregateMix(t *testing.T) {
	t.Parallel()
	mix := []events.NamedWorkload{{Name: "chat", Weight: 0.7}, {Name: "rag", Weight: 0.3}}
	per := map[string]map[string]float64{
		"chat": {"output_throughput": 1000, "mean_ttft_ms": 20, "p99_ttft_ms": 100, "completed": 100, "only_chat": 5},
		"rag":  {"output_throughput": 400, "mean_ttft_ms": 80, "p99_ttft_ms": 300, "completed": 50},
	}
	how := map[string]string{"mean_ttft_ms": events.AggregateMax, "output_throughput": events.AggregateMin}
	tests := []struct {
		name   string
		how    map[string]string
		metric string
		want   float64
	}{
		{"weighted by default", nil, "output_throughput", 0.7*1000 + 0.3*400},
		{"weighted latency", nil, "p99_ttft_ms", 0.7*100 + 0.3*300},
		{"counts add up", nil, "completed", 150},
		{"worst of a minimised metric", how, "mean_ttft_ms", 80},
		{"worst of a maximised metric", how, "output_throughput", 400},
		{"a metric one workload lacks", nil, "only_chat", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := study.AggregateMix(mix, tt.how, per)[tt.metric]
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("%s = %v, want %v", tt.metric, got, tt.want)
			}
		})
	}
	// Weights normalise: 7 and 3 are 0.7 and 0.3.
	scaled := []events.NamedWorkload{{Name: "chat", Weight: 7}, {Name: "rag", Weight: 3}}
	if got := study.AggregateMix(scaled, nil, per)["output_throughput"]; math.Abs(got-820) > 1e-9 {
		t.Errorf("weights 7:3 give %v, want 820", got)
	}
	// A weight of 0 measures a workload without weighing it in.
	zero := []events.NamedWorkload{{Name: "chat", Weight: 1}, {Name: "rag", Weight: 0}}
	if got := study.AggregateMix(zero, how, per); got["p99_ttft_ms"] != 100 || got["mean_ttft_ms"] != 80 {
		t.Errorf("with rag at weight 0: p99 %v (want chat's 100), worst mean %v (want rag's 80)", got["p99_ttft_ms"], got["mean_ttft_ms"])
	}
}

func TestMixCapacityInfeasibleWhenAnyWorkloadFindsNone(t *testing.T) {
	t.Parallel()
	s, err := study.Parse("mix.yaml", []byte(`
workloads:
  - {name: a, capacity: {search: concurrency, max: 64, slo: {p99_ttft_ms: 500}}}
  - {name: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Violations(map[string]float64{"capacity_concurrency": 16}); len(v) != 0 {
		t.Errorf("capacity 16 is feasible, got %v", v)
	}
	v := s.Violations(map[string]float64{"capacity_concurrency": 0})
	if len(v) != 1 || !strings.Contains(v[0], "capacity_concurrency = 0") {
		t.Errorf("violations = %v", v)
	}
}
