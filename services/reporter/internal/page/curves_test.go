package page

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

func TestCurvesPanel(t *testing.T) {
	t.Parallel()
	doc, spec := sampleDoc()
	if d := Build(doc, spec, Status{}, time.Unix(100, 0)); d.Panels != nil {
		t.Fatalf("a one-level study has panels %v", d.Panels)
	}
	p99, met, missed := 120.0, true, false
	high := 900.0
	doc.Curves = &front.CurvesInfo{Axis: "max_concurrency", SLO: map[string]float64{"p99_ttft_ms": 500}}
	doc.ParetoFront[0].Curve = []front.CurvePoint{{Level: 16, P99TTFTMs: &p99, SLOMet: &met}, {Level: 64, P99TTFTMs: &high, SLOMet: &missed}}
	doc.ParetoFront[0].Capacity = &front.CapacityInfo{Search: "concurrency", Level: 48}
	d := Build(doc, spec, Status{}, time.Unix(100, 0))
	c, ok := d.Panels[PanelCurves].(*Curves)
	if !ok || c.Axis != "max_concurrency" || c.SLO["p99_ttft_ms"] != 500 || len(c.Members) != 1 || len(c.Members[0].Curve) != 2 || c.Members[0].Capacity.Level != 48 {
		t.Fatalf("panel %+v", d.Panels)
	}
	body, _, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Panels struct {
			Curves struct {
				Members []struct {
					Curve []map[string]any `json:"curve"`
				} `json:"members"`
			} `json:"curves"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(body, &back); err != nil || back.Panels.Curves.Members[0].Curve[1]["p99_ttft_ms"] != 900.0 || back.Panels.Curves.Members[0].Curve[1]["slo_met"] != false {
		t.Fatalf("encoded panel %s (%v)", body, err)
	}
	page, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `sgtune.panel("curves"`) {
		t.Fatal("the page has no curves panel")
	}
}
