package front

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testStudy = "s1"

func testSpec(constraints ...study.Constraint) study.Spec {
	s := study.Default()
	s.StudyName = testStudy
	s.Constraints = constraints
	return s
}

func complete(n int, ttftMs, tps float64) Outcome {
	return Outcome{
		Study: testStudy, Trial: n, State: StateComplete, OccurredAt: t0.Add(time.Duration(n) * time.Minute),
		Params:  map[string]any{"tp_size": float64(1 + n%2), "attention_backend": nil, "enable_mixed_chunk": n%3 == 0},
		Metrics: map[string]float64{"mean_ttft_ms": ttftMs, "output_throughput": tps, "p99_ttft_ms": 2 * ttftMs, "completed": 256},
		Units:   map[string]string{"mean_ttft_ms": "ms", "output_throughput": "tok/s", "p99_ttft_ms": "ms", "completed": "req"},
		Runner:  "r1", GPUModel: "NVIDIA H100 80GB HBM3",
		LaunchCommand: []string{"python3", "-m", "sglang.launch_server", "--model-path", "m", "--tp-size", "1"},
	}
}

func failed(n int, class string) Outcome {
	return Outcome{Study: testStudy, Trial: n, State: StateFailed, OccurredAt: t0.Add(time.Duration(n) * time.Minute),
		Params: map[string]any{"tp_size": float64(8)}, FailureClass: class, Reason: "server died", LogTail: "CUDA out of memory"}
}

func rejected(n int, rules ...string) Outcome {
	o := Outcome{Study: testStudy, Trial: n, State: StateRejected, OccurredAt: t0.Add(time.Duration(n) * time.Minute),
		Params: map[string]any{"tp_size": float64(8), "dp_size": float64(8)}}
	for _, r := range rules {
		o.Rejections = append(o.Rejections, Rejection{Rule: r, RuleSet: "seed", Reason: r + " failed"})
	}
	return o
}

func fold(t *testing.T, r *Report, outcomes ...Outcome) {
	t.Helper()
	for _, o := range outcomes {
		if _, err := r.Fold(o); err != nil {
			t.Fatalf("fold trial %d: %v", o.Trial, err)
		}
	}
}

func frontTrials(doc FrontDoc) []int {
	out := []int{}
	for _, m := range doc.ParetoFront {
		out = append(out, m.TrialNumber)
	}
	return out
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func roundTrip(t *testing.T, o Outcome) Outcome {
	t.Helper()
	var out Outcome
	if err := json.Unmarshal(mustEncode(t, o), &out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

func TestFoldIdempotent(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("CET", 3600)
	base := []Outcome{complete(0, 50, 1000), complete(1, 30, 1500), failed(2, "oom"), rejected(3, "seed.gpu_count"), complete(4, 20, 900)}
	base[1].OccurredAt = base[1].OccurredAt.In(zone)
	base[1].Metrics["broken"] = math.NaN()
	reversed := slices.Clone(base)
	slices.Reverse(reversed)
	tests := []struct {
		name   string
		refold func(t *testing.T) []Outcome
	}{
		{name: "same outcomes again", refold: func(*testing.T) []Outcome { return base }},
		{name: "reversed order", refold: func(*testing.T) []Outcome { return reversed }},
		{name: "decoded copies", refold: func(t *testing.T) []Outcome {
			var out []Outcome
			for _, o := range base {
				c := o
				c.Metrics = map[string]float64{}
				for k, v := range o.Metrics {
					if !math.IsNaN(v) {
						c.Metrics[k] = v
					}
				}
				out = append(out, roundTrip(t, c))
			}
			return out
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReport(testStudy, testSpec(), t0)
			fold(t, r, base...)
			wantFront, wantResults := mustEncode(t, r.Front()), mustEncode(t, r.Results())
			for _, o := range tc.refold(t) {
				changed, err := r.Fold(o)
				if err != nil || changed {
					t.Fatalf("refold trial %d: changed=%v err=%v, want no change", o.Trial, changed, err)
				}
			}
			if got := mustEncode(t, r.Front()); !bytes.Equal(got, wantFront) {
				t.Fatalf("front changed:\n got %s\nwant %s", got, wantFront)
			}
			if got := mustEncode(t, r.Results()); !bytes.Equal(got, wantResults) {
				t.Fatalf("results changed")
			}
		})
	}
}

func TestFoldOrderDoesNotMatter(t *testing.T) {
	t.Parallel()
	outcomes := []Outcome{complete(0, 50, 1000), complete(1, 30, 1500), failed(2, "oom"), rejected(3, "seed.gpu_count"), complete(4, 20, 900), complete(5, 25, 1600)}
	a := NewReport(testStudy, testSpec(), t0)
	fold(t, a, outcomes...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(outcomes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := NewReport(testStudy, testSpec(), t0)
		fold(t, b, shuffled...)
		if !bytes.Equal(mustEncode(t, a.Results()), mustEncode(t, b.Results())) {
			t.Fatalf("fold order changed the results")
		}
	}
}

func TestFoldRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		given     Outcome
		withError error
	}{
		{name: "different outcome for a known trial", given: failed(1, "crash"), withError: ErrConflict},
		{name: "other study", given: func() Outcome { o := complete(9, 1, 1); o.Study = "other"; return o }(), withError: ErrOtherStudy},
		{name: "unknown state", given: func() Outcome { o := complete(9, 1, 1); o.State = "RUNNING"; return o }(), withError: ErrBadOutcome},
		{name: "negative trial", given: complete(-1, 1, 1), withError: ErrBadOutcome},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReport(testStudy, testSpec(), t0)
			fold(t, r, complete(0, 50, 1000), complete(1, 30, 1500))
			before := mustEncode(t, r.Results())
			changed, err := r.Fold(tc.given)
			if !errors.Is(err, tc.withError) || changed {
				t.Fatalf("Fold: changed=%v err=%v, want %v", changed, err, tc.withError)
			}
			if !bytes.Equal(before, mustEncode(t, r.Results())) {
				t.Fatalf("a refused outcome changed the report")
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func TestFront(t *testing.T) {
	t.Parallel()
	missing := complete(7, 10, 5000)
	delete(missing.Metrics, "output_throughput")
	slow := complete(1, 10, 9000)
	slow.Metrics["p99_ttft_ms"] = 500
	tests := []struct {
		name          string
		constraints   []study.Constraint
		given         []Outcome
		expectedFront []int
		expectedCount Counts
	}{
		{
			name:          "dominated trials are left out",
			given:         []Outcome{complete(0, 50, 1000), complete(1, 30, 1500), complete(2, 40, 1200), complete(3, 20, 900)},
			expectedFront: []int{1, 3},
			expectedCount: Counts{Outcomes: 4, Benchmarked: 4, Completed: 4, Feasible: 4},
		},
		{
			name:          "ties: identical points are all kept, equal in one objective and worse in the other is not",
			given:         []Outcome{complete(0, 30, 1500), complete(1, 30, 1500), complete(2, 30, 1400), complete(3, 35, 1500), complete(4, 20, 1000)},
			expectedFront: []int{0, 1, 4},
			expectedCount: Counts{Outcomes: 5, Benchmarked: 5, Completed: 5, Feasible: 5},
		},
		{
			name:          "infeasible trials never enter the front, however good",
			constraints:   []study.Constraint{{Metric: "p99_ttft_ms", Max: ptr(90)}},
			given:         []Outcome{complete(0, 40, 1000), slow, complete(2, 44, 1100), missing},
			expectedFront: []int{0, 2},
			expectedCount: Counts{Outcomes: 4, Benchmarked: 4, Completed: 4, Feasible: 2, Infeasible: 2},
		},
		{
			name:          "failures and rejections are counted, not fronted",
			given:         []Outcome{failed(0, "oom"), complete(1, 30, 1500), failed(2, ""), rejected(3, "seed.gpu_count", "seed.pp_dp_cap"), rejected(4, "seed.gpu_count"), failed(5, "oom")},
			expectedFront: []int{1},
			expectedCount: Counts{Outcomes: 6, Benchmarked: 4, Completed: 1, Feasible: 1, Failed: 3, Rejected: 2,
				FailedByClass:  map[string]int{"oom": 2, "unknown": 1},
				RejectedByRule: map[string]int{"seed.gpu_count": 2, "seed.pp_dp_cap": 1}},
		},
		{
			name:          "no outcome",
			expectedFront: []int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReport(testStudy, testSpec(tc.constraints...), t0)
			fold(t, r, tc.given...)
			doc := r.Front()
			if got := frontTrials(doc); !slices.Equal(got, tc.expectedFront) {
				t.Fatalf("front = %v, want %v", got, tc.expectedFront)
			}
			if got, want := mustEncode(t, doc.Counts), mustEncode(t, tc.expectedCount); !bytes.Equal(got, want) {
				t.Fatalf("counts = %s, want %s", got, want)
			}
			if doc.NTrials != tc.expectedCount.Benchmarked {
				t.Fatalf("n_trials = %d, want %d", doc.NTrials, tc.expectedCount.Benchmarked)
			}
			for _, rec := range r.Results().Trials {
				if rec.ParetoOptimal != slices.Contains(tc.expectedFront, rec.TrialNumber) {
					t.Fatalf("trial %d pareto_optimal = %v", rec.TrialNumber, rec.ParetoOptimal)
				}
				if rec.State == StateComplete && !rec.Feasible && rec.Reason == "" {
					t.Fatalf("infeasible trial %d has no reason", rec.TrialNumber)
				}
			}
		})
	}
}

// TestFrontMatchesStudyMath checks the incremental front against
// study.ParetoFront on random points, out of order.
func TestFrontMatchesStudyMath(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	spec := testSpec()
	dirs := spec.Directions()
	for round := range 20 {
		r := NewReport(testStudy, testSpec(), t0)
		var points [][]float64
		var nums []int
		perm := rng.Perm(60)
		for _, n := range perm {
			ttft := float64(10 + rng.IntN(20))
			tps := float64(1000 + 100*rng.IntN(10))
			fold(t, r, complete(n, ttft, tps))
			points = append(points, []float64{ttft / 1000, tps})
			nums = append(nums, n)
		}
		var want []int
		for _, i := range study.ParetoFront(points, dirs) {
			want = append(want, nums[i])
		}
		slices.Sort(want)
		if got := frontTrials(r.Front()); !slices.Equal(got, want) {
			t.Fatalf("round %d: front %v, want %v", round, got, want)
		}
		wantHV := study.Hypervolume(points, dirs, []float64{
			r.Front().ReferencePoint["ttft"], r.Front().ReferencePoint["tps"]})
		if got := r.Front().Hypervolume; math.Abs(got-wantHV) > 1e-9*wantHV {
			t.Fatalf("round %d: hypervolume %v, want %v", round, got, wantHV)
		}
	}
}

func TestHypervolumeHistory(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	r := NewReport(testStudy, testSpec(), t0)
	for _, n := range rng.Perm(80) {
		switch {
		case n%7 == 3:
			fold(t, r, failed(n, "oom"))
		case n%11 == 5:
			fold(t, r, rejected(n, "seed.gpu_count"))
		default:
			fold(t, r, complete(n, float64(10+rng.IntN(80)), float64(500+rng.IntN(3000))))
		}
	}
	res := r.Results()
	hist := res.HypervolumeHistory
	if len(hist) != res.NTrials {
		t.Fatalf("history has %d points, want one per benchmarked trial (%d)", len(hist), res.NTrials)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].TrialNumber <= hist[i-1].TrialNumber {
			t.Fatalf("history not in trial order at %d", i)
		}
		if hist[i].Hypervolume < hist[i-1].Hypervolume {
			t.Fatalf("hypervolume decreased at trial %d: %v -> %v", hist[i].TrialNumber, hist[i-1].Hypervolume, hist[i].Hypervolume)
		}
		if hist[i].Benchmarked != i+1 {
			t.Fatalf("benchmarked count %d at %d", hist[i].Benchmarked, i)
		}
	}
	if last := hist[len(hist)-1]; last.Hypervolume != res.Hypervolume || last.FrontSize != len(res.ParetoFront) {
		t.Fatalf("last history point %+v disagrees with the front (hv %v, %d members)", last, res.Hypervolume, len(res.ParetoFront))
	}
}

func TestReferencePointAndBaseline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		given          []Outcome
		expectedAnchor int
		expectedRef    map[string]float64
		expectBaseline bool
	}{
		{
			name:           "trial 0 completed: it anchors the point and is the baseline",
			given:          []Outcome{complete(2, 10, 3000), complete(0, 40, 1000), complete(1, 20, 2000)},
			expectedAnchor: 0, expectedRef: map[string]float64{"ttft": 0.08, "tps": 0}, expectBaseline: true,
		},
		{
			name:           "trial 0 failed: the lowest-numbered completed trial anchors, no baseline",
			given:          []Outcome{failed(0, "oom"), complete(3, 10, 3000), complete(1, 25, 2000)},
			expectedAnchor: 1, expectedRef: map[string]float64{"ttft": 0.05, "tps": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReport(testStudy, testSpec(), t0)
			fold(t, r, tc.given...)
			doc := r.Front()
			if doc.Reference == nil || doc.Reference.AnchorTrial != tc.expectedAnchor {
				t.Fatalf("reference = %+v, want anchor %d", doc.Reference, tc.expectedAnchor)
			}
			for k, v := range tc.expectedRef {
				if math.Abs(doc.ReferencePoint[k]-v) > 1e-12 {
					t.Fatalf("reference point %v, want %v", doc.ReferencePoint, tc.expectedRef)
				}
			}
			if (doc.Baseline != nil) != tc.expectBaseline {
				t.Fatalf("baseline = %+v, want present=%v", doc.Baseline, tc.expectBaseline)
			}
			for _, m := range doc.ParetoFront {
				if tc.expectBaseline != (m.GainOverBaseline != nil) {
					t.Fatalf("trial %d gain %v", m.TrialNumber, m.GainOverBaseline)
				}
			}
		})
	}
}

func TestGainOverBaseline(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	fold(t, r, complete(0, 40, 1000), complete(1, 20, 1500))
	m := r.Front().ParetoFront
	if len(m) != 1 || m[0].TrialNumber != 1 {
		t.Fatalf("front %v", frontTrials(r.Front()))
	}
	if g := m[0].GainOverBaseline; math.Abs(g["ttft"]-2) > 1e-12 || math.Abs(g["tps"]-1.5) > 1e-12 {
		t.Fatalf("gain = %v, want ttft 2 (twice as fast) and tps 1.5", g)
	}
	if *m[0].TTFT != 0.02 || *m[0].TPS != 1500 {
		t.Fatalf("seed fields ttft=%v tps=%v", *m[0].TTFT, *m[0].TPS)
	}
}

func TestEncodeASCIIOneLine(t *testing.T) {
	t.Parallel()
	o := complete(0, 25, 2500)
	o.Params["schedule_policy"] = "lpm \u2014 caf\u00e9 \U0001F680\u007f"
	o.Runner = "r\u00fcnner\n2"
	r := NewReport(testStudy, testSpec(), t0)
	fold(t, r, o)
	for name, v := range map[string]any{"front": r.Front(), "results": r.Results()} {
		b := mustEncode(t, v)
		for i, c := range b {
			if c < 0x20 || c > 0x7E {
				t.Fatalf("%s: byte %#x at %d is not printable ASCII", name, c, i)
			}
		}
		if !bytes.Contains(b, []byte(`\n`)) {
			t.Fatalf("%s: the newline should be escaped, not dropped", name)
		}
	}
	b, err := EncodeFront(r.Front())
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeFront(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.ParetoFront[0].Parameters["schedule_policy"]; got != o.Params["schedule_policy"] {
		t.Fatalf("round trip gave %q", got)
	}
	if !SameFront(back, r.Front()) {
		t.Fatalf("decoded front differs from the original")
	}
	if !strings.HasPrefix(string(b), `{"study_name":"s1","n_trials":1,"pareto_front":[{"trial_number":0,"ttft":0.025,"tps":2500,"parameters":{`) {
		t.Fatalf("seed fields must come first: %.120s", b)
	}
}

func TestSeedJSONShape(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	fold(t, r, complete(42, 25, 2500))
	var seed struct {
		StudyName   string `json:"study_name"`
		NTrials     int    `json:"n_trials"`
		ParetoFront []struct {
			TrialNumber int            `json:"trial_number"`
			TTFT        float64        `json:"ttft"`
			TPS         float64        `json:"tps"`
			Parameters  map[string]any `json:"parameters"`
			State       string         `json:"state"`
		} `json:"pareto_front"`
	}
	if err := json.Unmarshal(mustEncode(t, r.Results()), &seed); err != nil {
		t.Fatal(err)
	}
	if seed.StudyName != testStudy || seed.NTrials != 1 || len(seed.ParetoFront) != 1 {
		t.Fatalf("seed view %+v", seed)
	}
	m := seed.ParetoFront[0]
	if m.TrialNumber != 42 || m.TTFT != 0.025 || m.TPS != 2500 || m.State != "COMPLETE" || m.Parameters["tp_size"] != float64(1) {
		t.Fatalf("seed member %+v", m)
	}
}
