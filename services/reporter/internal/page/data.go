package page

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Data is everything the page draws: one JSON document, rebuilt on every
// change of the study.
type Data struct {
	Study string `json:"study"`
	// Status is the study's ("running", "complete"); StopReason says why it ended.
	Status     string `json:"status,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	// Budget is n_trials; InFlight the trials proposed and not finished.
	Budget   int `json:"budget"`
	InFlight int `json:"in_flight"`
	// Objectives in spec order; the plot uses the first two.
	Objectives  []front.ObjectiveInfo `json:"objectives"`
	Counts      front.Counts          `json:"counts"`
	Hypervolume float64               `json:"hypervolume"`
	// GPUHours is the GPU time the study's trials held.
	GPUHours  float64            `json:"gpu_hours,omitempty"`
	Reference map[string]float64 `json:"reference_point,omitempty"`
	Baseline  *int               `json:"baseline,omitempty"`
	Trials    []Trial            `json:"trials"`
	// Running are the trials a runner runs now (from their last progress report).
	Running []Trial  `json:"running"`
	Front   []Member `json:"front"`
	// HV is the hypervolume after each benchmarked trial: [benchmarked, hypervolume].
	HV [][2]float64 `json:"hv"`
	// Failures and Rejections count trials by failure class and by rule.
	Failures   map[string]int `json:"failures"`
	Rejections map[string]int `json:"rejections"`
	Effects    []Effect       `json:"effects"`
	// UpdatedAt is the newest outcome's time; Now is when the data was built
	// (the timeline's right edge while the study runs).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Now       time.Time `json:"now"`
	// Panels holds extra sections by name, drawn by panels registered in live.js.
	Panels map[string]any `json:"panels,omitempty"`
}

// Trial is one trial as the page shows it.
type Trial struct {
	N     int    `json:"n"`
	State string `json:"state"`
	// Front: on the Pareto front; Feasible: completed and met every SLO.
	Front    bool               `json:"front,omitempty"`
	Feasible bool               `json:"feasible,omitempty"`
	Repeat   bool               `json:"repeat,omitempty"`
	Obj      map[string]float64 `json:"obj,omitempty"`
	// Diff holds the parameters that differ from SGLang's defaults, as
	// SGLang would print them.
	Diff   map[string]string `json:"diff,omitempty"`
	Runner string            `json:"runner,omitempty"`
	GPUs   []int             `json:"gpus,omitempty"`
	// Start and End of the run on the runner, Unix milliseconds (0 unknown).
	Start int64 `json:"start,omitempty"`
	End   int64 `json:"end,omitempty"`
	// Cause is the failure class, or the first rejecting rule.
	Cause  string `json:"cause,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Member is one front member's row: what differs from the defaults and the
// command that launches it.
type Member struct {
	N    int                `json:"n"`
	Obj  map[string]float64 `json:"obj"`
	Gain map[string]float64 `json:"gain,omitempty"`
	Diff map[string]string  `json:"diff"`
	// Command is the launch command, shell-quoted, without the runner's
	// --host and --port (SGLang's defaults then apply).
	Command string `json:"command"`
	Runs    []int  `json:"runs,omitempty"`
}

// Status is what the study's KV entry and the progress stream add to its results.
type Status struct {
	Status     string
	StopReason string
	Budget     int
	Proposed   int
	// Running are the trials in flight that a runner reported working on.
	Running []Running
}

// Running is a trial a runner works on now.
type Running struct {
	Trial   int
	Runner  string
	GPUs    []int
	Phase   string
	Claimed time.Time
}

// Build derives the page's data from a study's results and spec.
func Build(doc front.ResultsDoc, spec study.Spec, st Status, now time.Time) Data {
	d := Data{
		Study: doc.StudyName, Status: st.Status, StopReason: st.StopReason, Budget: st.Budget,
		Objectives: doc.Objectives, Counts: doc.Counts, Hypervolume: doc.Hypervolume, Reference: doc.ReferencePoint,
		Trials: make([]Trial, 0, len(doc.Trials)), Front: make([]Member, 0, len(doc.ParetoFront)),
		HV: make([][2]float64, 0, len(doc.HypervolumeHistory)), Failures: orEmpty(doc.Counts.FailedByClass),
		Rejections: orEmpty(doc.Counts.RejectedByRule), UpdatedAt: doc.UpdatedAt, Now: now, GPUHours: doc.GPUHours,
	}
	if d.Budget == 0 {
		d.Budget = spec.NTrials
	}
	if st.Proposed > 0 {
		d.InFlight = max(st.Proposed-doc.Counts.Outcomes, 0)
	}
	if doc.Baseline != nil {
		n := doc.Baseline.TrialNumber
		d.Baseline = &n
	}
	for _, t := range doc.Trials {
		pt := Trial{
			N: t.TrialNumber, State: t.State, Front: t.ParetoOptimal, Feasible: t.Feasible, Repeat: t.RepeatOf != nil,
			Obj: t.Objectives, Diff: NonDefault(t.Parameters), Runner: t.Runner, GPUs: t.GPUs,
			Start: millis(t.StartedAt), End: millis(t.FinishedAt), Reason: firstLine(t.Reason, 300),
		}
		switch {
		case t.FailureClass != "":
			pt.Cause = t.FailureClass
		case len(t.Rules) > 0:
			pt.Cause = t.Rules[0].Rule
		}
		d.Trials = append(d.Trials, pt)
	}
	d.Running = make([]Trial, 0, len(st.Running))
	for _, r := range st.Running {
		d.Running = append(d.Running, Trial{N: r.Trial, State: "RUNNING", Runner: r.Runner, GPUs: r.GPUs, Start: millis(r.Claimed), Cause: r.Phase})
	}
	for _, m := range doc.ParetoFront {
		d.Front = append(d.Front, Member{
			N: m.TrialNumber, Obj: m.Objectives, Gain: m.GainOverBaseline, Diff: NonDefault(m.Parameters),
			Command: Command(m.LaunchCommand), Runs: m.Runs,
		})
	}
	for _, h := range doc.HypervolumeHistory {
		d.HV = append(d.HV, [2]float64{float64(h.Benchmarked), h.Hypervolume})
	}
	d.Effects = Effects(doc, spec.Space)
	if c := curvesPanel(doc); c != nil {
		d.Panels = map[string]any{PanelCurves: c}
	}
	return d
}

// NonDefault keeps the parameters whose value differs from SGLang's default
// (None, a nil value, is the default), rendered as SGLang's flags take them.
func NonDefault(params map[string]any) map[string]string {
	out := map[string]string{}
	for name, v := range params {
		if v == nil {
			continue
		}
		if def, ok := study.LookupParam(name); ok && def.Default != nil && study.ValueEqual(def.Default, v) {
			continue
		}
		out[name] = study.FormatValue(v)
	}
	return out
}

// Command renders a launch argv for a shell, without --host and --port.
func Command(argv []string) string {
	var out []string
	for i := 0; i < len(argv); i++ {
		if (argv[i] == "--host" || argv[i] == "--port") && i+1 < len(argv) {
			i++
			continue
		}
		out = append(out, shellQuote(argv[i]))
	}
	return strings.Join(out, " ")
}

func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func firstLine(s string, limit int) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > limit {
		line = line[:limit] + "…"
	}
	return line
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return maps.Clone(m)
}

// finite reports whether every value is a finite number.
func finite(vs ...float64) bool {
	return !slices.ContainsFunc(vs, func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
}

// Waiting is the data of a study that has nothing to show yet: the page
// draws its empty panels and polls until there is more.
func Waiting(studyName, why string, now time.Time) Data {
	return Data{
		Study: studyName, Status: "waiting", StopReason: why, Trials: []Trial{}, Running: []Trial{}, Front: []Member{}, HV: [][2]float64{},
		Failures: map[string]int{}, Rejections: map[string]int{}, Effects: []Effect{}, Objectives: []front.ObjectiveInfo{}, Now: now,
	}
}
