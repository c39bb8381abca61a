package capacity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// run drives a search against a server whose margin at each level is
// margin(level) (the worst metric over its bound), noise-free.
func run(t *testing.T, cfg Config, margin func(float64) float64) (capacity float64, ok bool, levels []float64) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for {
		step, done := s.Next()
		if done {
			break
		}
		levels = append(levels, step.Level)
		if len(levels) > 50 {
			t.Fatalf("no end: %v", levels)
		}
		m := margin(step.Level)
		v := Fail
		if m <= 1 {
			v = Pass
		}
		s.Observe(step.Level, Judgement{Verdict: v, Margin: m})
	}
	capacity, ok = s.Capacity()
	return capacity, ok, levels
}

func TestSearch_finds_a_known_capacity_within_10_percent_in_8_levels(t *testing.T) {
	t.Parallel()
	// Latency shapes against load, each with a true capacity C (the level
	// where the margin crosses 1).
	shapes := map[string]func(c float64) func(float64) float64{
		"linear":        func(c float64) func(float64) float64 { return func(l float64) float64 { return l / c } },
		"offset linear": func(c float64) func(float64) float64 { return func(l float64) float64 { return 0.6 + 0.4*l/c } },
		"hockey stick":  func(c float64) func(float64) float64 { return func(l float64) float64 { return math.Pow(l/c, 6) } },
		"flat then wall": func(c float64) func(float64) float64 {
			return func(l float64) float64 { return 0.3 + 0.7*math.Pow(l/c, 20) }
		},
	}
	for name, shape := range shapes {
		for _, c := range []float64{1.7, 3.3, 10.5, 37, 100, 230, 480} {
			for _, integer := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/C=%v/integer=%v", name, c, integer), func(t *testing.T) {
					t.Parallel()
					got, ok, levels := run(t, Config{Min: 1, Max: 512, Integer: integer}, shape(c))
					truth := c
					if integer {
						truth = math.Floor(c) // the highest whole level that meets the SLO
					}
					t.Logf("capacity %v (true %v) in %d levels: %v", got, truth, len(levels), levels)
					if !ok || math.Abs(got-truth)/truth > 0.10 || len(levels) > 8 {
						t.Fatalf("capacity %v (ok %v) after levels %v; true %v", got, ok, levels, truth)
					}
				})
			}
		}
	}
}

func TestSearch_edges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		given         Config
		givenMargin   func(float64) float64
		expectedOK    bool
		expectedLevel float64
		maxLevels     int
	}{
		{name: "everything meets the SLO: max", given: Config{Min: 1, Max: 256, Integer: true},
			givenMargin: func(l float64) float64 { return l / 10000 }, expectedOK: true, expectedLevel: 256, maxLevels: 3},
		{name: "nothing meets the SLO: infeasible", given: Config{Min: 1, Max: 256, Integer: true},
			givenMargin: func(l float64) float64 { return 5 + l }, expectedOK: false, maxLevels: 4},
		{name: "only the minimum meets it", given: Config{Min: 1, Max: 64, Integer: true},
			givenMargin: func(l float64) float64 { return l / 1.5 }, expectedOK: true, expectedLevel: 1, maxLevels: 8},
		{name: "a one-level range", given: Config{Min: 8, Max: 8, Integer: true},
			givenMargin: func(l float64) float64 { return l / 10 }, expectedOK: true, expectedLevel: 8, maxLevels: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, levels := run(t, tt.given, tt.givenMargin)
			if ok != tt.expectedOK || (ok && got != tt.expectedLevel) || len(levels) > tt.maxLevels {
				t.Fatalf("capacity %v ok %v after %v; want %v ok %v within %d levels", got, ok, levels, tt.expectedLevel, tt.expectedOK, tt.maxLevels)
			}
		})
	}
}

func TestSearch_repeats_an_uncertain_level_once(t *testing.T) {
	t.Parallel()
	s, _ := New(Config{Min: 1, Max: 64, Integer: true})
	step, _ := s.Next()
	s.Observe(step.Level, Judgement{Verdict: Uncertain, Margin: 0.98})
	again, done := s.Next()
	if done || !again.Repeat || again.Level != step.Level {
		t.Fatalf("after an uncertain verdict: %+v done %v, want a repeat of %v", again, done, step.Level)
	}
	s.Observe(again.Level, Judgement{Verdict: Uncertain, Margin: 0.99})
	next, _ := s.Next()
	if next.Repeat || next.Level <= step.Level {
		t.Fatalf("a second uncertain verdict decides by the point estimate (pass at margin 0.99): next %+v", next)
	}
	if s.Levels() != 2 {
		t.Fatalf("levels %d: repeats count", s.Levels())
	}
}

func TestSearch_bad_config(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{Min: 0, Max: 8}, {Min: 4, Max: 2}, {Min: 1.5, Max: 8, Integer: true}, {Min: 1, Max: math.Inf(1)}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestJudge_noise(t *testing.T) {
	t.Parallel()
	slo := SLO{"p99_ttft_ms": 100}
	tests := []struct {
		name         string
		givenPoint   float64
		givenSpread  float64 // resamples: point ± spread, uniformly
		expectedVerd Verdict
	}{
		{"clear pass", 50, 5, Pass},
		{"clear fail", 200, 10, Fail},
		{"straddles the bound", 98, 10, Uncertain},
		{"just over, in the noise", 102, 10, Uncertain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resample := func(r *rand.Rand) map[string]float64 {
				return map[string]float64{"p99_ttft_ms": tt.givenPoint + tt.givenSpread*(2*r.Float64()-1)}
			}
			j := Judge(slo, map[string]float64{"p99_ttft_ms": tt.givenPoint}, resample, rand.New(rand.NewPCG(1, 2)), DefaultBootstrap)
			if j.Verdict != tt.expectedVerd || j.Worst != "p99_ttft_ms" {
				t.Fatalf("verdict %v (pass share %.2f, margin %.2f), want %v", j.Verdict, j.PassShare, j.Margin, tt.expectedVerd)
			}
		})
	}
	if m, _ := Margin(SLO{"p99_ttft_ms": 100, "p99_tpot_ms": 50}, map[string]float64{"p99_ttft_ms": 50}); !math.IsInf(m, 1) {
		t.Fatalf("a metric not measured must fail the SLO, margin %v", m)
	}
}

func TestRequests_sized_for_the_tail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		givenSLO   SLO
		givenLevel float64
		givenBase  int
		expected   int
	}{
		{SLO{"p99_ttft_ms": 1}, 4, 10, 300},
		{SLO{"p90_ttft_ms": 1}, 4, 10, 30},
		{SLO{"mean_tpot_ms": 1, "p95_itl_ms": 1}, 4, 10, 60},
		{SLO{"p99_ttft_ms": 1}, 256, 10, 512},
		{SLO{"median_e2e_latency_ms": 1}, 2, 500, 500},
	}
	for _, tt := range tests {
		if got := Requests(tt.givenSLO, tt.givenLevel, tt.givenBase); got != tt.expected {
			t.Errorf("Requests(%v, %v, %d) = %d, want %d", tt.givenSLO, tt.givenLevel, tt.givenBase, got, tt.expected)
		}
	}
}
