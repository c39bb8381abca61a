package page

import "github.com/sgtune/sgtune/services/reporter/internal/front"

// PanelCurves is the key of the load-curves panel in Data.Panels.
const PanelCurves = "curves"

// Curves is the load-curves panel: each front member's p99/mean TTFT and
// TPOT against load with the SLO lines, and its capacity (a study with a
// ladder or a capacity search; absent otherwise).
type Curves struct {
	// Axis is "max_concurrency" or "request_rate"; SLO maps a latency
	// metric to its bound in ms.
	Axis    string             `json:"axis"`
	SLO     map[string]float64 `json:"slo,omitempty"`
	Members []CurveMember      `json:"members"`
}

// CurveMember is one front member's curve.
type CurveMember struct {
	N        int                 `json:"n"`
	Curve    []front.CurvePoint  `json:"curve"`
	Capacity *front.CapacityInfo `json:"capacity,omitempty"`
}

// curvesPanel builds the panel from the front (nil when no member has a curve).
func curvesPanel(doc front.ResultsDoc) *Curves {
	if doc.Curves == nil {
		return nil
	}
	c := &Curves{Axis: doc.Curves.Axis, SLO: doc.Curves.SLO, Members: []CurveMember{}}
	for _, m := range doc.ParetoFront {
		if len(m.Curve) > 0 {
			c.Members = append(c.Members, CurveMember{N: m.TrialNumber, Curve: m.Curve, Capacity: m.Capacity})
		}
	}
	if len(c.Members) == 0 {
		return nil
	}
	return c
}
