package front

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
)

// A page shows a study's trials on the plane of its first two objectives, the
// Pareto front as a step line, the baseline, and a table of the front members.
// It is plain HTML with inline SVG (no scripts, no external assets), refreshed
// by the browser every few seconds while a study runs.

const (
	plotW, plotH = 760.0, 440.0
	padL, padR   = 70.0, 20.0
	padT, padB   = 20.0, 50.0
)

type pagePoint struct {
	X, Y       float64
	Class      string // front, feasible, infeasible, baseline
	Title      string
	Trial      int
	IsBaseline bool
}

type pageTick struct {
	Pos   float64
	Label string
}

type pageData struct {
	Study       string
	Refresh     int
	XName       string
	YName       string
	Points      []pagePoint
	FrontPath   string
	XTicks      []pageTick
	YTicks      []pageTick
	W, H        float64
	PlotL       float64
	PlotR       float64
	PlotT       float64
	PlotB       float64
	Front       []FrontMember
	Objectives  []ObjectiveInfo
	Counts      Counts
	Hypervolume float64
	Note        string
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"fmt4": func(v float64) string { return fmt.Sprintf("%.4g", v) },
	"obj":  func(m FrontMember, name string) string { return fmt.Sprintf("%.4g", m.Objectives[name]) },
	"gain": func(m FrontMember, name string) string {
		if g, ok := m.GainOverBaseline[name]; ok {
			return fmt.Sprintf("%.2fx", g)
		}
		return ""
	},
	"params": func(m FrontMember) string {
		keys := make([]string, 0, len(m.Parameters))
		for k := range m.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%v ", k, formatParam(m.Parameters[k]))
		}
		return strings.TrimSpace(b.String())
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>sgtune — {{.Study}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} table{border-collapse:collapse;margin-top:16px} td,th{border:1px solid #ccc;padding:4px 8px;font-size:12px;text-align:left;vertical-align:top}
.front{fill:#1f6feb} .feasible{fill:#9aa4ad} .infeasible{fill:#e3873c} .baseline{fill:none;stroke:#d1242f;stroke-width:2}
.axis{stroke:#444} .grid{stroke:#eee} .frontline{fill:none;stroke:#1f6feb;stroke-width:1.5}
.legend span{margin-right:16px} .muted{color:#666}
</style></head><body>
<h1>Study {{.Study}}</h1>
<p class="muted">{{.Counts.Benchmarked}} benchmarked ({{.Counts.Completed}} completed, {{.Counts.Failed}} failed), {{.Counts.Rejected}} rejected ·
front of {{len .Front}} · hypervolume {{fmt4 .Hypervolume}}{{if .Note}} · {{.Note}}{{end}}</p>
<svg width="{{.W}}" height="{{.H}}" role="img" aria-label="trials by {{.XName}} and {{.YName}}">
{{range .XTicks}}<line class="grid" x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$.PlotT}}" y2="{{$.PlotB}}"/><text x="{{.Pos}}" y="{{$.PlotB}}" dy="16" text-anchor="middle" font-size="11">{{.Label}}</text>{{end}}
{{range .YTicks}}<line class="grid" x1="{{$.PlotL}}" x2="{{$.PlotR}}" y1="{{.Pos}}" y2="{{.Pos}}"/><text x="{{$.PlotL}}" y="{{.Pos}}" dx="-6" dy="4" text-anchor="end" font-size="11">{{.Label}}</text>{{end}}
<line class="axis" x1="{{.PlotL}}" x2="{{.PlotR}}" y1="{{.PlotB}}" y2="{{.PlotB}}"/><line class="axis" x1="{{.PlotL}}" x2="{{.PlotL}}" y1="{{.PlotT}}" y2="{{.PlotB}}"/>
<text x="{{.PlotR}}" y="{{.H}}" dy="-6" text-anchor="end">{{.XName}}</text>
<text x="14" y="{{.PlotT}}" dy="4" transform="rotate(-90 14 {{.PlotT}})" text-anchor="end">{{.YName}}</text>
{{if .FrontPath}}<path class="frontline" d="{{.FrontPath}}"/>{{end}}
{{range .Points}}<circle class="{{.Class}}" cx="{{.X}}" cy="{{.Y}}" r="{{if .IsBaseline}}7{{else}}4{{end}}"><title>{{.Title}}</title></circle>{{end}}
</svg>
<p class="legend"><span style="color:#1f6feb">● Pareto front</span><span style="color:#9aa4ad">● completed</span><span style="color:#e3873c">● infeasible (missed an SLO)</span><span style="color:#d1242f">○ baseline (trial 0)</span></p>
<table><tr><th>trial</th>{{range .Objectives}}<th>{{.Name}} ({{.Unit}}, {{.Direction}})</th><th>gain</th>{{end}}<th>parameters</th></tr>
{{range $m := .Front}}<tr><td>{{$m.TrialNumber}}</td>{{range $.Objectives}}<td>{{obj $m .Name}}</td><td>{{gain $m .Name}}</td>{{end}}<td>{{params $m}}</td></tr>
{{end}}</table>
</body></html>
`))

func formatParam(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		if x == math.Trunc(x) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%g", x)
	}
	return fmt.Sprint(v)
}

// RenderPage draws a study's results as an HTML page. refresh > 0 asks the
// browser to reload every refresh seconds. Studies with fewer than two
// objectives get the table only.
func RenderPage(doc ResultsDoc, refresh int) ([]byte, error) {
	data := pageData{
		Study: doc.StudyName, Refresh: refresh, W: plotW, H: plotH,
		PlotL: padL, PlotR: plotW - padR, PlotT: padT, PlotB: plotH - padB,
		Front: doc.ParetoFront, Objectives: doc.Objectives, Counts: doc.Counts, Hypervolume: doc.Hypervolume,
	}
	if len(doc.Objectives) < 2 {
		data.Note = "fewer than two objectives: no plot"
		return execPage(data)
	}
	xo, yo := doc.Objectives[0], doc.Objectives[1]
	data.XName = axisName(xo)
	data.YName = axisName(yo)
	type raw struct {
		x, y  float64
		class string
		title string
		trial int
		base  bool
	}
	var pts []raw
	for _, t := range doc.Trials {
		x, okx := t.Objectives[xo.Name]
		y, oky := t.Objectives[yo.Name]
		if !okx || !oky || t.RepeatOf != nil {
			continue
		}
		class := "feasible"
		switch {
		case t.ParetoOptimal:
			class = "front"
		case !t.Feasible:
			class = "infeasible"
		}
		base := doc.Baseline != nil && doc.Baseline.TrialNumber == t.TrialNumber
		title := fmt.Sprintf("trial %d: %s %.4g, %s %.4g", t.TrialNumber, xo.Name, x, yo.Name, y)
		pts = append(pts, raw{x, y, class, title, t.TrialNumber, base})
	}
	if len(pts) == 0 {
		data.Note = "no completed trial yet"
		return execPage(data)
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	minX, maxX = niceRange(minX, maxX)
	minY, maxY = niceRange(minY, maxY)
	sx := func(v float64) float64 { return data.PlotL + (v-minX)/(maxX-minX)*(data.PlotR-data.PlotL) }
	sy := func(v float64) float64 { return data.PlotB - (v-minY)/(maxY-minY)*(data.PlotB-data.PlotT) }
	var front []raw
	for _, p := range pts {
		data.Points = append(data.Points, pagePoint{X: round1(sx(p.x)), Y: round1(sy(p.y)), Class: p.class, Title: p.title, Trial: p.trial})
		if p.base {
			data.Points = append(data.Points, pagePoint{X: round1(sx(p.x)), Y: round1(sy(p.y)), Class: "baseline", Title: p.title + " (baseline)", IsBaseline: true})
		}
		if p.class == "front" {
			front = append(front, p)
		}
	}
	// The front as a staircase, in the order of the x objective.
	sort.Slice(front, func(i, j int) bool { return front[i].x < front[j].x })
	var path strings.Builder
	for i, p := range front {
		if i == 0 {
			fmt.Fprintf(&path, "M%.1f %.1f", sx(p.x), sy(p.y))
			continue
		}
		prev := front[i-1]
		fmt.Fprintf(&path, " L%.1f %.1f L%.1f %.1f", sx(p.x), sy(prev.y), sx(p.x), sy(p.y))
	}
	data.FrontPath = path.String()
	for _, v := range ticks(minX, maxX) {
		data.XTicks = append(data.XTicks, pageTick{Pos: round1(sx(v)), Label: fmt.Sprintf("%.4g", v)})
	}
	for _, v := range ticks(minY, maxY) {
		data.YTicks = append(data.YTicks, pageTick{Pos: round1(sy(v)), Label: fmt.Sprintf("%.4g", v)})
	}
	return execPage(data)
}

func execPage(data pageData) ([]byte, error) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render page: %w", err)
	}
	return buf.Bytes(), nil
}

func axisName(o ObjectiveInfo) string {
	arrow := "↓ better"
	if o.Direction == "maximize" {
		arrow = "↑ better"
	}
	if o.Unit != "" {
		return fmt.Sprintf("%s (%s, %s)", o.Name, o.Unit, arrow)
	}
	return fmt.Sprintf("%s (%s)", o.Name, arrow)
}

// niceRange widens [lo, hi] by 5 % on each side (and a degenerate range to ±1 %).
func niceRange(lo, hi float64) (float64, float64) {
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.01, 1e-9)
		return lo - d, hi + d
	}
	d := (hi - lo) * 0.05
	return lo - d, hi + d
}

// ticks returns about five round values within [lo, hi].
func ticks(lo, hi float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
