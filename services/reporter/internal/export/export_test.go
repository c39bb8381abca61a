package export

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func intp(n int) *int { return &n }

// sample is a study with every kind of outcome: the baseline, front members,
// a dominated trial, an infeasible one, an OOM, a rejection, a gap (trial 7
// still in flight) and a repeat run.
func sample() (front.ResultsDoc, study.Space) {
	space := study.Space{
		{Name: "tp_size", Values: []any{1, 2, 4}},
		{Name: "attention_backend", Values: []any{nil, "fa3", "flashinfer"}},
	}
	rec := func(n int, state string, feasible, onFront bool, ttft, tps float64, params map[string]any) front.TrialRecord {
		r := front.TrialRecord{
			TrialNumber: n, State: state, Feasible: feasible, ParetoOptimal: onFront, Parameters: params,
			StartedAt: t0.Add(time.Duration(n) * time.Minute), FinishedAt: t0.Add(time.Duration(n)*time.Minute + 30*time.Second),
		}
		if state == front.StateComplete {
			r.Objectives = map[string]float64{"ttft": ttft, "tps": tps}
			r.Metrics = map[string]float64{"mean_ttft_ms": ttft * 1000, "output_throughput": tps, "p99_ttft_ms": ttft * 2000}
		}
		return r
	}
	p := func(tp int, backend any) map[string]any {
		return map[string]any{"tp_size": tp, "attention_backend": backend}
	}
	trials := []front.TrialRecord{
		rec(0, front.StateComplete, true, false, 0.05, 1000, p(1, nil)),
		rec(1, front.StateComplete, true, true, 0.02, 1500, p(2, "fa3")),
		rec(2, front.StateComplete, true, false, 0.03, 1400, p(2, "flashinfer")),
		// Infeasible: would dominate everything, yet is not on sgtune's front.
		rec(3, front.StateComplete, false, false, 0.001, 9000, p(4, "fa3")),
		rec(4, front.StateFailed, false, false, 0, 0, p(4, nil)),
		rec(5, front.StateRejected, false, false, 0, 0, p(8, "fa3")), // 8 is not in the spec's list
		rec(6, front.StateComplete, true, true, 0.04, 2500, p(4, "flashinfer")),
		// 7: no outcome yet.
		rec(8, front.StateComplete, true, false, 0.01, 3000, p(2, "fa3")), // a repeat of 1, better by chance
	}
	trials[3].Violations = []string{"p99_ttft_ms 600 > 500"}
	trials[4].FailureClass, trials[4].Reason = "oom", "CUDA out of memory"
	trials[5].Rules = []front.Rejection{{Rule: "seed.gpu_count", Reason: "8 GPUs > 4"}}
	trials[7].RepeatOf = intp(1) // trial 8
	doc := front.ResultsDoc{
		FrontDoc: front.FrontDoc{
			StudyName: "s1", StartedAt: t0,
			Objectives: []front.ObjectiveInfo{{Name: "ttft", Direction: "minimize", Unit: "s"}, {Name: "tps", Direction: "maximize", Unit: "tok/s"}},
			ParetoFront: []front.FrontMember{
				// Trial 1 with its repeat: the mean of both runs.
				{TrialNumber: 1, Objectives: map[string]float64{"ttft": 0.015, "tps": 2250}, Runs: []int{1, 8}},
				{TrialNumber: 6, Objectives: map[string]float64{"ttft": 0.04, "tps": 2500}},
			},
		},
		Trials: trials,
	}
	return doc, space
}

type op map[string]any

func decodeJournal(t *testing.T, b []byte) []op {
	t.Helper()
	var ops []op
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o op
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", len(ops)+1, err, sc.Text())
		}
		if o["worker_id"] == nil {
			t.Fatalf("line %d has no worker_id", len(ops)+1)
		}
		ops = append(ops, o)
	}
	return ops
}

func TestOptunaJournal(t *testing.T) {
	t.Parallel()
	doc, space := sample()
	var buf bytes.Buffer
	if err := OptunaJournal(&buf, doc, space); err != nil {
		t.Fatal(err)
	}
	ops := decodeJournal(t, buf.Bytes())
	if ops[0]["op_code"] != float64(opCreateStudy) || ops[0]["study_name"] != "s1" || !slices.Equal(toInts(ops[0]["directions"]), []int{1, 2}) {
		t.Fatalf("first operation %v", ops[0])
	}
	// Replay the trials as Optuna does: creation order gives the numbers.
	type trial struct {
		state    int
		values   []float64
		attrs    map[string]any
		params   map[string]int
		choices  map[string][]any
		finished bool
	}
	var trials []*trial
	for _, o := range ops {
		switch int(o["op_code"].(float64)) {
		case opCreateTrial:
			trials = append(trials, &trial{attrs: map[string]any{}, params: map[string]int{}, choices: map[string][]any{}})
		case opSetTrialParam:
			tr := trials[int(o["trial_id"].(float64))]
			var dist struct {
				Name       string `json:"name"`
				Attributes struct {
					Choices []any `json:"choices"`
				} `json:"attributes"`
			}
			if err := json.Unmarshal([]byte(o["distribution"].(string)), &dist); err != nil || dist.Name != "CategoricalDistribution" {
				t.Fatalf("distribution %v: %v", o["distribution"], err)
			}
			name := o["param_name"].(string)
			tr.params[name] = int(o["param_value_internal"].(float64))
			tr.choices[name] = dist.Attributes.Choices
		case opSetTrialUserAttr:
			tr := trials[int(o["trial_id"].(float64))]
			for k, v := range o["user_attr"].(map[string]any) {
				tr.attrs[k] = v
			}
		case opSetTrialStateValues:
			tr := trials[int(o["trial_id"].(float64))]
			tr.state, tr.finished = int(o["state"].(float64)), true
			if o["datetime_complete"] == nil {
				t.Fatalf("finished trial without datetime_complete: %v", o)
			}
			if v, ok := o["values"].([]any); ok {
				for _, x := range v {
					tr.values = append(tr.values, x.(float64))
				}
			}
		}
	}
	if len(trials) != 9 {
		t.Fatalf("%d trials, want 9 (the gap at 7 filled)", len(trials))
	}
	wantStates := []int{stateComplete, stateComplete, stateComplete, stateFail, stateFail, statePruned, stateComplete, stateRunning, statePruned}
	for n, tr := range trials {
		if tr.attrs["sgtune_trial"] != float64(n) {
			t.Errorf("trial %d: sgtune_trial %v", n, tr.attrs["sgtune_trial"])
		}
		if n == 7 {
			if tr.finished || tr.attrs["sgtune_state"] != "IN_FLIGHT" {
				t.Errorf("the gap is not a running trial: %+v", tr)
			}
			continue
		}
		if tr.state != wantStates[n] {
			t.Errorf("trial %d: state %d, want %d", n, tr.state, wantStates[n])
		}
	}
	// Choices: the spec's list, None included, plus the value the rejected trial ran.
	if got := trials[5].choices["tp_size"]; !slices.Equal(toInts(got), []int{1, 2, 4, 8}) || trials[5].params["tp_size"] != 3 {
		t.Errorf("tp_size choices %v, index %d", got, trials[5].params["tp_size"])
	}
	if got := trials[0].choices["attention_backend"]; len(got) != 3 || got[0] != nil || trials[0].params["attention_backend"] != 0 {
		t.Errorf("attention_backend choices %v, trial 0 index %d", got, trials[0].params["attention_backend"])
	}
	// Metrics and the reasons are user attributes.
	if trials[1].attrs["p99_ttft_ms"] != 40.0 || trials[4].attrs["failure_class"] != "oom" || trials[3].attrs["violations"] == nil {
		t.Errorf("attrs: %v / %v / %v", trials[1].attrs, trials[4].attrs, trials[3].attrs)
	}
	// best_trials (the non-dominated COMPLETE trials) is sgtune's front.
	var pts [][]float64
	var nums []int
	for n, tr := range trials {
		if tr.state == stateComplete && tr.finished {
			pts = append(pts, tr.values)
			nums = append(nums, n)
		}
	}
	var best []int
	for _, i := range study.ParetoFront(pts, []study.Direction{study.Minimize, study.Maximize}) {
		best = append(best, nums[i])
	}
	slices.Sort(best)
	if !slices.Equal(best, []int{1, 6}) || !slices.Equal(trials[1].values, []float64{0.015, 2250}) {
		t.Fatalf("best trials %v (trial 1 values %v), want [1 6] with the repeat's mean", best, trials[1].values)
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	doc, space := sample()
	var buf bytes.Buffer
	if err := CSV(&buf, doc, space); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := rows[0]
	want := "trial_number,state,feasible,pareto_optimal,ttft,tps,tp_size,attention_backend,mean_ttft_ms"
	if !strings.HasPrefix(strings.Join(header, ","), want) || header[len(header)-1] != "reason" {
		t.Fatalf("header %v", header)
	}
	if len(rows) != 1+len(doc.Trials) {
		t.Fatalf("%d rows", len(rows))
	}
	col := func(name string) int { return slices.Index(header, name) }
	if r := rows[1]; r[col("attention_backend")] != "None" || r[col("ttft")] != "0.05" || r[col("mean_ttft_ms")] != "50" {
		t.Errorf("baseline row %v", r)
	}
	if r := rows[5]; r[col("state")] != "FAILED" || r[col("failure_class")] != "oom" || r[col("ttft")] != "" {
		t.Errorf("failed row %v", r)
	}
}

func toInts(v any) []int {
	var out []int
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if f, ok := e.(float64); ok {
				out = append(out, int(f))
			}
		}
	}
	return out
}
