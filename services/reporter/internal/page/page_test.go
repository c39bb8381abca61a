package page

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

func TestNonDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    map[string]any
		expected map[string]string
	}{
		{name: "None is the default", given: map[string]any{"attention_backend": nil}, expected: map[string]string{}},
		{name: "a default value", given: map[string]any{"tp_size": 1, "enable_mixed_chunk": false}, expected: map[string]string{}},
		{name: "changed values", given: map[string]any{"tp_size": 2, "enable_mixed_chunk": true, "attention_backend": "fa3"},
			expected: map[string]string{"tp_size": "2", "enable_mixed_chunk": "True", "attention_backend": "fa3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := NonDefault(tc.given)
			if len(got) != len(tc.expected) {
				t.Fatalf("got %v, want %v", got, tc.expected)
			}
			for k, v := range tc.expected {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.expected)
				}
			}
		})
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	got := Command([]string{"python3", "-m", "sglang.launch_server", "--model-path", "/models/my model", "--host", "127.0.0.1", "--port", "31000", "--tp-size", "2"})
	if want := "python3 -m sglang.launch_server --model-path '/models/my model' --tp-size 2"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func sampleDoc() (front.ResultsDoc, study.Spec) {
	spec := study.Default()
	spec.Space = study.Space{{Name: "tp_size", Values: []any{1, 2}}, {Name: "attention_backend", Values: []any{nil, "fa3"}}}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := func(n int, tp int, ttft, tps float64, onFront bool) front.TrialRecord {
		return front.TrialRecord{TrialNumber: n, State: front.StateComplete, Feasible: true, ParetoOptimal: onFront,
			Parameters: map[string]any{"tp_size": tp, "attention_backend": nil}, Objectives: map[string]float64{"ttft": ttft, "tps": tps},
			Runner: "r1", GPUs: []int{0}, StartedAt: t0.Add(time.Duration(n) * time.Minute), FinishedAt: t0.Add(time.Duration(n)*time.Minute + 30*time.Second)}
	}
	doc := front.ResultsDoc{
		FrontDoc: front.FrontDoc{StudyName: "s<1>", Objectives: []front.ObjectiveInfo{{Name: "ttft", Direction: "minimize", Unit: "s"}, {Name: "tps", Direction: "maximize"}},
			Counts: front.Counts{Outcomes: 4, Benchmarked: 3, Completed: 3, Feasible: 3, Rejected: 1, RejectedByRule: map[string]int{"seed.gpu_count": 1}},
			ParetoFront: []front.FrontMember{{TrialNumber: 1, Objectives: map[string]float64{"ttft": 0.02, "tps": 2000}, Parameters: map[string]any{"tp_size": 2, "attention_backend": nil},
				LaunchCommand: []string{"python3", "-m", "sglang.launch_server", "--model-path", "m", "--host", "h", "--port", "1", "--tp-size", "2"}}},
			Baseline: &front.BaselineInfo{TrialNumber: 0}},
		Trials: []front.TrialRecord{rec(0, 1, 0.05, 1000, false), rec(1, 2, 0.02, 2000, true), rec(2, 2, 0.03, 1800, false),
			{TrialNumber: 3, State: front.StateRejected, Rules: []front.Rejection{{Rule: "seed.gpu_count"}}}},
		HypervolumeHistory: []front.HVPoint{{TrialNumber: 0, Benchmarked: 1, Hypervolume: 1}, {TrialNumber: 1, Benchmarked: 2, Hypervolume: 3}},
	}
	return doc, spec
}

func TestBuildAndRender(t *testing.T) {
	t.Parallel()
	doc, spec := sampleDoc()
	d := Build(doc, spec, Status{Status: "running", Budget: 10, Proposed: 6}, time.Unix(100, 0))
	if d.InFlight != 2 || d.Budget != 10 || len(d.Trials) != 4 || len(d.Front) != 1 || len(d.HV) != 2 || *d.Baseline != 0 {
		t.Fatalf("data %+v", d)
	}
	if m := d.Front[0]; m.Command != "python3 -m sglang.launch_server --model-path m --tp-size 2" || m.Diff["tp_size"] != "2" || len(m.Diff) != 1 {
		t.Fatalf("member %+v", m)
	}
	if d.Trials[3].Cause != "seed.gpu_count" || d.Trials[1].Start == 0 {
		t.Fatalf("trials %+v", d.Trials)
	}
	// tp_size moves both objectives: tp 2 is better for each.
	found := 0
	for _, e := range d.Effects {
		if e.Param == "tp_size" {
			found++
			if e.Best != "2" || len(e.Values) != 2 || e.Values[0].Value != "1" {
				t.Fatalf("effect %+v", e)
			}
		}
	}
	if found != 2 {
		t.Fatalf("tp_size effects: %d, want one per objective: %+v", found, d.Effects)
	}

	page, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{`<title>sgtune — s&lt;1&gt;</title>`, `<script id="sgtune-data" type="application/json">{"study":"s\u003c1\u003e"`, "sgtune.panel", `id="front-table"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script src") || strings.Contains(html, `<link rel="stylesheet"`) {
		t.Error("the page loads something from elsewhere")
	}
	// The ETag ignores the build time and changes with the data.
	_, e1, _ := Encode(d)
	d2 := d
	d2.Now = d.Now.Add(time.Hour)
	_, e2, _ := Encode(d2)
	d3 := d
	d3.InFlight++
	_, e3, _ := Encode(d3)
	if e1 != e2 || e1 == e3 {
		t.Fatalf("etags %s %s %s", e1, e2, e3)
	}
	var back Data
	body, _, _ := Encode(Waiting("x", "no study yet", time.Now()))
	if err := json.Unmarshal(body, &back); err != nil || back.Trials == nil || back.Status != "waiting" {
		t.Fatalf("waiting data %s: %v", body, err)
	}
}
