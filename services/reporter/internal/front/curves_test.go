package front

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

func capacitySpec() study.Spec {
	s := testSpec(study.Constraint{Metric: "p99_ttft_ms", Max: ptr(400)})
	s.Workload.Capacity = &events.CapacitySearch{Search: events.SearchConcurrency, Max: 256,
		SLO: map[string]float64{"p99_ttft_ms": 500, "p99_tpot_ms": 50}}
	s.Objectives = []study.Objective{
		{Name: "tps_per_gpu", Metric: "capacity_output_throughput_per_gpu", Scale: 1, Direction: study.Maximize, Unit: "tok/s"},
		{Name: "ttft", Metric: "p99_ttft_ms", Scale: 0.001, Direction: study.Minimize, Unit: "s"},
	}
	return s
}

func TestFrontMembersCarryTheirCurveAndCapacity(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, capacitySpec(), t0)
	yes, no := true, false
	o := complete(0, 100, 2000)
	o.Metrics["capacity_concurrency"] = 48
	o.Metrics["capacity_output_throughput"] = 5200
	o.Metrics["capacity_output_throughput_per_gpu"] = 2600
	o.Metrics["gpus"] = 2
	o.Metrics["p99_ttft_ms"] = 380
	// A capacity search measures levels out of order: grow, then bisect.
	o.LoadPoints = []events.LoadPoint{
		{MaxConcurrency: 16, Metrics: map[string]float64{"p99_ttft_ms": 120, "p99_tpot_ms": 20}, SLOMet: &yes},
		{MaxConcurrency: 64, Metrics: map[string]float64{"p99_ttft_ms": 900, "p99_tpot_ms": 70}, SLOMet: &no},
		{MaxConcurrency: 48, Metrics: map[string]float64{"p99_ttft_ms": 380, "p99_tpot_ms": 45}, SLOMet: &yes},
	}
	fold(t, r, o)
	doc := r.Front()
	if doc.Curves == nil || doc.Curves.Axis != "max_concurrency" || doc.Curves.SLO["p99_ttft_ms"] != 400 || doc.Curves.SLO["p99_tpot_ms"] != 50 {
		t.Fatalf("curves info %+v: want the concurrency axis, the tighter TTFT bound (constraint 400 < SLO 500) and TPOT 50", doc.Curves)
	}
	if len(doc.ParetoFront) != 1 {
		t.Fatalf("front %+v", doc.ParetoFront)
	}
	m := doc.ParetoFront[0]
	if len(m.Curve) != 3 || m.Curve[0].Level != 16 || m.Curve[1].Level != 48 || m.Curve[2].Level != 64 || *m.Curve[2].P99TTFTMs != 900 || *m.Curve[2].SLOMet {
		t.Fatalf("curve %+v, want 16, 48, 64 in load order", m.Curve)
	}
	if c := m.Capacity; c == nil || c.Level != 48 || *c.OutputThroughputPerGPU != 2600 || c.GPUs != 2 {
		t.Fatalf("capacity %+v", m.Capacity)
	}
	if len(r.Results().Trials[0].LoadPoints) != 3 {
		t.Fatalf("results record lost its load points")
	}
	var out bytes.Buffer
	if err := Print(&out, doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Capacity: 48 concurrent requests under the SLO, 5200.00 tok/s (2600.00 tok/s per GPU, 2 GPUs)",
		"Curve: 16: p99 TTFT 120 ms p99 TPOT 20 ms; 48: p99 TTFT 380 ms p99 TPOT 45 ms; 64: p99 TTFT 900 ms p99 TPOT 70 ms (misses the SLO)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNoCurvesForOneLevel(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	fold(t, r, complete(0, 50, 2000))
	doc := r.Front()
	if doc.Curves != nil || doc.ParetoFront[0].Curve != nil || doc.ParetoFront[0].Capacity != nil {
		t.Fatalf("a one-level study has curves %+v / %+v", doc.Curves, doc.ParetoFront[0])
	}
	var out bytes.Buffer
	_ = Print(&out, doc)
	if strings.Contains(out.String(), "Capacity") || strings.Contains(out.String(), "Curve") {
		t.Fatalf("console:\n%s", out.String())
	}
}
