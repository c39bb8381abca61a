package pruning_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/pruning"
)

var objectives = []pruning.Objective{{Name: "ttft", Unit: "s"}, {Name: "tps", Unit: "tok/s", Maximize: true}}

var front = []pruning.Member{{Trial: 3, Values: []float64{0.10, 3000}}, {Trial: 7, Values: []float64{0.05, 2000}}}

func obs(ttft, tps float64, requests int, fraction float64) pruning.Observation {
	return pruning.Observation{
		Objectives: []pruning.Bound{pruning.Estimate(ttft), pruning.Estimate(tps)},
		Requests:   requests, Fraction: fraction,
	}
}

func ptr(v float64) *float64 { return &v }

func TestDecide(t *testing.T) {
	t.Parallel()
	p := pruning.Policy{} // defaults: z 2, floor 0.05, cv 1
	tests := []struct {
		name     string
		given    pruning.Observation
		front    []pruning.Member
		wantStop bool
		wantWhy  string
	}{
		{"clearly dominated", obs(0.30, 1000, 100, 0.4), front, true, "dominated by trial 3"},
		{"dominated but too few requests", obs(0.30, 1000, 8, 0.4), front, false, "only 8 requests"},
		{"dominated but too early", obs(0.30, 1000, 100, 0.05), front, false, "only 5% measured"},
		{"dominated but nearly finished", obs(0.30, 1000, 100, 0.9), front, false, "little left to save"},
		{"on the front", obs(0.08, 3500, 100, 0.4), front, false, "not dominated"},
		// 10% worse than trial 3 in both: within 2 x sqrt(0.05^2 + 1/100) = 0.22 of it.
		{"within noise of a member", obs(0.11, 2700, 100, 0.4), front, false, "not dominated"},
		// The same point with 400 requests: the band shrinks to 0.14 and still covers it.
		{"within noise with more requests", obs(0.11, 2700, 400, 0.4), front, false, "not dominated"},
		// 40% worse than trial 3: optimistically 0.14 x 0.86 = 0.12 s and 2000 x 1.14 = 2283 tok/s.
		{"beyond noise with more requests", obs(0.14, 2000, 400, 0.4), front, true, "trial 3"},
		{"empty front", obs(0.30, 1000, 100, 0.4), nil, false, "not dominated"},
		{"an objective not measured yet", obs(math.NaN(), 1000, 100, 0.4), front, false, "not measured yet: ttft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := pruning.Decide(p, objectives, tt.front, tt.given, nil)
			if d.Stop != tt.wantStop || !strings.Contains(d.Reason, tt.wantWhy) {
				t.Errorf("stop %v (%s), want %v (%q)", d.Stop, d.Reason, tt.wantStop, tt.wantWhy)
			}
		})
	}
}

func TestDecideHardBounds(t *testing.T) {
	t.Parallel()
	// A mix's worst TTFT so far (0.12 s, measured) bounds the final worst
	// from below: the noise band cannot take it under trial 3's 0.10 s.
	o := obs(0.12, 3000, 100, 0.5)
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil); d.Stop {
		t.Fatalf("without the bound the estimate is within noise: %s", d.Reason)
	}
	o.Objectives[0].Lower = 0.12
	o.Objectives[1].Upper = 3000
	d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil)
	if !d.Stop || d.Optimistic[0] != 0.12 || d.Optimistic[1] != 3000 {
		t.Fatalf("with the hard bounds: stop %v, optimistic %v (%s)", d.Stop, d.Optimistic, d.Reason)
	}
}

func TestDecideConstraints(t *testing.T) {
	t.Parallel()
	good := obs(0.08, 3500, 100, 0.4)
	tests := []struct {
		name     string
		c        pruning.Constraint
		wantStop bool
	}{
		{"max missed beyond noise", pruning.Constraint{Metric: "p99_ttft_ms", Max: ptr(500), Value: pruning.Estimate(800)}, true},
		{"max missed within noise", pruning.Constraint{Metric: "p99_ttft_ms", Max: ptr(500), Value: pruning.Estimate(550)}, false},
		{"max met", pruning.Constraint{Metric: "p99_ttft_ms", Max: ptr(500), Value: pruning.Estimate(300)}, false},
		{"min missed beyond noise", pruning.Constraint{Metric: "goodput", Min: ptr(10), Value: pruning.Estimate(5)}, true},
		{"min met", pruning.Constraint{Metric: "goodput", Min: ptr(10), Value: pruning.Estimate(12)}, false},
		{"missed while an objective is unknown", pruning.Constraint{Metric: "p99_ttft_ms", Max: ptr(500), Value: pruning.Estimate(900)}, true},
		{"max missed by a hard bound", pruning.Constraint{Metric: "p99_ttft_ms", Max: ptr(500), Value: pruning.Bound{Estimate: 550, Lower: 550, Upper: math.NaN()}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := good
			o.Objectives = slices.Clone(good.Objectives)
			if strings.Contains(tt.name, "unknown") {
				o.Objectives[0] = pruning.Estimate(math.NaN())
			}
			o.Constraints = []pruning.Constraint{tt.c}
			d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil)
			if d.Stop != tt.wantStop {
				t.Errorf("stop %v (%s), want %v", d.Stop, d.Reason, tt.wantStop)
			}
			if d.Stop && !strings.Contains(d.Reason, tt.c.Metric) {
				t.Errorf("reason %q does not name %s", d.Reason, tt.c.Metric)
			}
		})
	}
}

func TestRelativeErrorShrinksWithRequests(t *testing.T) {
	t.Parallel()
	p := pruning.Policy{}
	a, b, c := p.RelativeError(16), p.RelativeError(256), p.RelativeError(1<<20)
	if !(a > b && b > c) || math.Abs(c-0.05) > 1e-3 {
		t.Fatalf("relative errors %v, %v, %v: want shrinking to the 0.05 floor", a, b, c)
	}
}

func TestDecideOnBoundsAlone(t *testing.T) {
	t.Parallel()
	// A capacity search whose level at 3000 tok/s missed the SLO: the trial's
	// capacity throughput is at most that (plus the 2 x 5 % noise floor), and
	// its latency at capacity at least the 0.2 s of the highest level it met.
	o := pruning.Observation{Requests: 200, Fraction: 0.4, Objectives: []pruning.Bound{
		{Estimate: math.NaN(), Lower: 0.2, Upper: math.NaN()},
		{Estimate: math.NaN(), Lower: math.NaN(), Upper: 2000},
	}}
	d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil)
	if !d.Stop || math.Abs(d.Optimistic[0]-0.18) > 1e-9 || math.Abs(d.Optimistic[1]-2200) > 1e-9 {
		t.Fatalf("stop %v optimistic %v (%s): want stopped at (0.18 s, 2200 tok/s)", d.Stop, d.Optimistic, d.Reason)
	}
	o.Objectives[1].Upper = 3500 // above trial 3's 3000: could still join the front
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil); d.Stop {
		t.Fatalf("stopped with a bound above the front: %s", d.Reason)
	}
}

func TestObserveScalesLikeTheObjectives(t *testing.T) {
	t.Parallel()
	spec := study.Default() // ttft = mean_ttft_ms x 0.001 (s), tps = output_throughput
	spec.Constraints = []study.Constraint{{Metric: "p99_ttft_ms", Max: ptr(500)}}
	m := events.Measurement{Requests: 40, Fraction: 0.25,
		Metrics: map[string]float64{"mean_ttft_ms": 250, "p99_ttft_ms": 700},
		Upper:   map[string]float64{"output_throughput": 1800}}
	o := pruning.Observe(&spec, m)
	if o.Requests != 40 || o.Fraction != 0.25 || len(o.Objectives) != 2 || len(o.Constraints) != 1 {
		t.Fatalf("observation %+v", o)
	}
	if o.Objectives[0].Estimate != 0.25 || !math.IsNaN(o.Objectives[1].Estimate) || o.Objectives[1].Upper != 1800 {
		t.Fatalf("objectives %+v", o.Objectives)
	}
	if c := o.Constraints[0]; c.Value.Estimate != 700 || *c.Max != 500 {
		t.Fatalf("constraint %+v", c)
	}
	objs := pruning.Objectives(&spec)
	if objs[0].Maximize || !objs[1].Maximize || objs[0].Unit != "s" {
		t.Fatalf("objectives %+v", objs)
	}
	// p99 TTFT 700 ms against its SLO of 500 is within noise after 40
	// requests (optimistically 700 x (1 - 2 x 0.166) = 467 ms); the
	// objectives decide: optimistically 0.17 s and 1980 tok/s, dominated.
	d := pruning.Decide(pruning.Policy{}, objs, front, o, nil)
	if !d.Stop {
		t.Fatalf("0.25 s TTFT against trial 3's 0.10 s, throughput at most 1800 x 1.1 against its 3000: %s", d.Reason)
	}
}

func TestDecideWithCalibration(t *testing.T) {
	t.Parallel()
	// 20% behind trial 3 in both objectives after 40 requests: within the
	// noise model's band (2 x 0.166).
	o := obs(0.12, 2400, 40, 0.3)
	o.Step = 2
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, nil); d.Stop {
		t.Fatalf("no calibration: %s", d.Reason)
	}
	// Finished trials of this study measured within 2 % of their final
	// values at step 2: the band shrinks to that (and the 5 % floor).
	var tight pruning.Calibration
	for i := range 25 {
		f := 1 + 0.02*float64(i%3-1)
		tight.Add(2, []float64{0.1, 1000}, []float64{0.1 * f, 1000 * f})
	}
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, &tight); !d.Stop {
		t.Fatalf("calibrated (%d trials, ratios within 2 %%): %s", tight.Samples(2), d.Reason)
	}
	// One finished trial's TTFT fell to 40 % of its step-2 value: a trial
	// could still get there, and is not stopped.
	wide := tight
	wide.Add(2, []float64{0.25, 1000}, []float64{0.1, 1000})
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, &wide); d.Stop {
		t.Fatalf("a finished trial showed TTFT dropping to 40 %%: %s", d.Reason)
	}
	// Another step has no calibration: the noise model decides.
	o.Step = 4
	if d := pruning.Decide(pruning.Policy{}, objectives, front, o, &tight); d.Stop {
		t.Fatalf("uncalibrated step: %s", d.Reason)
	}
}
