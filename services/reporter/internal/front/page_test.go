package front

import (
	"strings"
	"testing"
)

func TestRenderPage(t *testing.T) {
	one := 1
	doc := ResultsDoc{
		FrontDoc: FrontDoc{
			StudyName: "<demo>",
			Objectives: []ObjectiveInfo{
				{Name: "ttft", Direction: "minimize", Unit: "s", Metric: "mean_ttft_ms"},
				{Name: "tps", Direction: "maximize", Unit: "tok/s", Metric: "output_throughput"},
			},
			ParetoFront: []FrontMember{
				{TrialNumber: 1, Objectives: map[string]float64{"ttft": 0.02, "tps": 1000}, Parameters: map[string]any{"tp_size": 1.0, "attention_backend": nil}, GainOverBaseline: map[string]float64{"ttft": 2}},
				{TrialNumber: 2, Objectives: map[string]float64{"ttft": 0.05, "tps": 3000}, Parameters: map[string]any{"tp_size": 2.0}},
			},
			Baseline: &BaselineInfo{TrialNumber: 0},
		},
		Trials: []TrialRecord{
			{TrialNumber: 0, State: "COMPLETE", Feasible: true, Objectives: map[string]float64{"ttft": 0.04, "tps": 900}},
			{TrialNumber: 1, State: "COMPLETE", Feasible: true, ParetoOptimal: true, Objectives: map[string]float64{"ttft": 0.02, "tps": 1000}},
			{TrialNumber: 2, State: "COMPLETE", Feasible: true, ParetoOptimal: true, Objectives: map[string]float64{"ttft": 0.05, "tps": 3000}},
			{TrialNumber: 3, State: "COMPLETE", Feasible: false, Objectives: map[string]float64{"ttft": 0.2, "tps": 500}},
			{TrialNumber: 4, State: "REJECTED"},
			{TrialNumber: 5, State: "COMPLETE", Feasible: true, RepeatOf: &one, Objectives: map[string]float64{"ttft": 0.021, "tps": 990}},
		},
	}
	page, err := RenderPage(doc, 5)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`&lt;demo&gt;`,                     // the study name is escaped
		`http-equiv="refresh" content="5"`, // reloads while the study runs
		`class="frontline" d="M`,           // the front's staircase
		`<title>trial 3: ttft 0.2, tps 500</title>`,
		`class="baseline"`,
		`attention_backend=None tp_size=1`, // parameters in the table, None spelled as SGLang does
		`ttft (s, ↓ better)`, `tps (tok/s, ↑ better)`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<demo>") {
		t.Error("study name not escaped")
	}
	// 4 plotted trials (the rejection and the repeat are not) + the baseline ring.
	if got := strings.Count(html, "<circle "); got != 5 {
		t.Errorf("%d circles, want 5", got)
	}
	for _, empty := range []ResultsDoc{{FrontDoc: FrontDoc{StudyName: "x", Objectives: doc.Objectives}}, {FrontDoc: FrontDoc{StudyName: "one", Objectives: doc.Objectives[:1]}}} {
		if _, err := RenderPage(empty, 0); err != nil {
			t.Errorf("%s: %v", empty.StudyName, err)
		}
	}
}
