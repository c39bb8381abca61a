package front

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Report is one study's record: every trial's outcome, keyed by trial number,
// and the documents derived from them. Fold is cheap; the documents are
// computed on demand and cached until the next change, so replaying a whole
// stream costs one computation. A Report is not safe for concurrent use.
type Report struct {
	study     string
	spec      study.Spec
	startedAt time.Time
	trials    map[int]*trial
	latest    time.Time

	dirty   bool
	front   FrontDoc
	results ResultsDoc
}

// trial is a folded outcome plus what the report derived from it.
type trial struct {
	o          Outcome
	params     map[string]any
	values     []float64 // objective values, nil unless complete and measured
	violations []string
	feasible   bool
	onFront    bool
	// With repeats (spec.Sampler.Repeats > 0): repeatOf is the first trial
	// of the same configuration; the first trial holds its runs, the mean of
	// their objectives and whether every run held up.
	repeatOf *int
	runs     []int
	mean     []float64
	holds    bool
}

// NewReport starts an empty report of study, judged by spec. startedAt is the
// study's start (StudyState.StartedAt); a study restarted fresh gets a new Report.
func NewReport(studyName string, spec study.Spec, startedAt time.Time) *Report {
	return &Report{study: studyName, spec: spec, startedAt: startedAt, trials: map[int]*trial{}, dirty: true}
}

// Study is the study's name.
func (r *Report) Study() string { return r.study }

// StartedAt is the study start the report was built for.
func (r *Report) StartedAt() time.Time { return r.startedAt }

// Len is the number of trials folded in.
func (r *Report) Len() int { return len(r.trials) }

// Fold adds a trial's outcome. Folding an outcome the report already has
// changes nothing (changed is false): trials are keyed by number, so a
// redelivered or replayed outcome is harmless. A different outcome for a
// known trial number is refused with ErrConflict and the first one kept
// (the outcomes stream holds one per trial, so this means a bug upstream).
func (r *Report) Fold(o Outcome) (changed bool, err error) {
	if o.Study != r.study {
		return false, fmt.Errorf("%w: %q, report of %q", ErrOtherStudy, o.Study, r.study)
	}
	if o.Trial < 0 {
		return false, fmt.Errorf("%w: negative trial number %d", ErrBadOutcome, o.Trial)
	}
	switch o.State {
	case StateComplete, StateFailed, StateRejected, StatePruned:
	default:
		return false, fmt.Errorf("%w: trial %d has state %q", ErrBadOutcome, o.Trial, o.State)
	}
	o = sanitize(o)
	if old, ok := r.trials[o.Trial]; ok {
		if sameOutcome(old.o, o) {
			return false, nil
		}
		return false, fmt.Errorf("%w: trial %d is %s, new outcome %s", ErrConflict, o.Trial, old.o.State, o.State)
	}
	r.trials[o.Trial] = &trial{o: o, params: normalizeParams(o.Params)}
	if o.OccurredAt.After(r.latest) {
		r.latest = o.OccurredAt
	}
	r.dirty = true
	return true, nil
}

// sanitize drops metrics that are not finite numbers (JSON cannot carry them)
// and makes empty maps and slices nil, so equal outcomes compare equal however
// they were decoded.
func sanitize(o Outcome) Outcome {
	o.Seq = 0
	o.Params = nilIfEmpty(o.Params)
	o.Metrics = nilIfEmpty(o.Metrics)
	o.Units = nilIfEmpty(o.Units)
	o.WorkloadMetrics = nilIfEmpty(o.WorkloadMetrics)
	o.WorkloadLoadPoints = nilIfEmpty(o.WorkloadLoadPoints)
	if len(o.LoadPoints) == 0 {
		o.LoadPoints = nil
	}
	if len(o.Rejections) == 0 {
		o.Rejections = nil
	}
	if len(o.LaunchCommand) == 0 {
		o.LaunchCommand = nil
	}
	if len(o.GPUs) == 0 {
		o.GPUs = nil
	}
	if allFinite(slices.Collect(maps.Values(o.Metrics))) {
		return o
	}
	m := make(map[string]float64, len(o.Metrics))
	for k, v := range o.Metrics {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m[k] = v
		}
	}
	o.Metrics = m
	return o
}

func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

// sameOutcome compares two outcomes, times by instant (a decoded time's
// location pointer differs between decodes of the same text).
func sameOutcome(a, b Outcome) bool {
	if !a.OccurredAt.Equal(b.OccurredAt) || !a.StartedAt.Equal(b.StartedAt) || !a.FinishedAt.Equal(b.FinishedAt) {
		return false
	}
	a.OccurredAt, a.StartedAt, a.FinishedAt = time.Time{}, time.Time{}, time.Time{}
	b.OccurredAt, b.StartedAt, b.FinishedAt = time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// normalizeParams converts JSON numbers to ints where the registry says so,
// keeping values it cannot normalise as they are.
func normalizeParams(p map[string]any) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = v
		if def, ok := study.LookupParam(k); ok {
			if nv, err := study.NormalizeValue(def, v); err == nil {
				out[k] = nv
			}
		}
	}
	return out
}

// Front returns the front document (cached until the next change).
func (r *Report) Front() FrontDoc {
	r.compute()
	return r.front
}

// Results returns the results-file document (cached until the next change).
func (r *Report) Results() ResultsDoc {
	r.compute()
	return r.results
}

// ReferenceRule states the reference-point rule (see the package doc); it is
// study.ReferenceRule, shared with the sampler's benchmark.
const ReferenceRule = study.ReferenceRule

// ReferencePoint derives the fixed hypervolume reference point from the
// anchor trial's objective values (see the package doc and
// study.ReferencePoint, which it is).
func ReferencePoint(anchor []float64, dirs []study.Direction) []float64 {
	return study.ReferencePoint(anchor, dirs)
}

// headlineMetrics are copied into every front member besides the objectives'
// and constraints' own metrics.
var headlineMetrics = []string{
	"mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2e_latency_ms",
	"output_throughput", "request_throughput", "goodput", "startup_seconds",
}

// HeadlineMetrics lists the metrics every front member carries besides its
// objectives' and constraints' own (the CSV export's metric columns too).
func HeadlineMetrics() []string { return slices.Clone(headlineMetrics) }

func (r *Report) compute() {
	if !r.dirty {
		return
	}
	r.dirty = false
	spec := &r.spec
	dirs := spec.Directions()
	nums := slices.Sorted(maps.Keys(r.trials))

	counts := Counts{}
	gpuSeconds := 0.0
	anchor := -1
	for _, n := range nums {
		t := r.trials[n]
		t.values, t.violations, t.feasible, t.onFront = nil, nil, false, false
		t.repeatOf, t.runs, t.mean, t.holds = nil, nil, nil, false
		counts.Outcomes++
		gpuSeconds += t.o.GPUSeconds
		switch t.o.State {
		case StateComplete:
			counts.Benchmarked++
			counts.Completed++
			values, ok := spec.ObjectiveValues(t.o.Metrics)
			if ok && allFinite(values) {
				t.values = values
				if anchor < 0 {
					anchor = n
				}
			} else {
				t.violations = append(t.violations, missingObjectives(spec, t.o.Metrics)...)
			}
			t.violations = append(t.violations, spec.Violations(t.o.Metrics)...)
			t.feasible = t.values != nil && len(t.violations) == 0
			if t.feasible {
				counts.Feasible++
			} else {
				counts.Infeasible++
			}
		case StatePruned:
			counts.Benchmarked++
			counts.Pruned++
			if values, ok := spec.ObjectiveValues(t.o.Metrics); ok && allFinite(values) {
				t.values = values // estimates when it was stopped: never on the front
			}
		case StateFailed:
			counts.Benchmarked++
			counts.Failed++
			class := t.o.FailureClass
			if class == "" {
				class = "unknown"
			}
			counts.FailedByClass = inc(counts.FailedByClass, class)
		case StateRejected:
			counts.Rejected++
			for _, rj := range t.o.Rejections {
				counts.RejectedByRule = inc(counts.RejectedByRule, rj.Rule)
			}
			if len(t.o.Rejections) == 0 {
				counts.RejectedByRule = inc(counts.RejectedByRule, "unknown")
			}
		}
	}

	var ref []float64
	if anchor >= 0 {
		ref = ReferencePoint(r.trials[anchor].values, dirs)
	}

	// Repeats: benchmarked trials of one configuration are one front entry,
	// led by the lowest-numbered (the sampler runs a config twice only as a
	// repeat; the validator rejects any other duplicate).
	repeats := spec.Sampler.Repeats > 0
	if repeats {
		leader := map[string]int{}
		for _, n := range nums {
			t := r.trials[n]
			if t.o.State == StateRejected {
				continue
			}
			k := paramsKey(t.params)
			if l, ok := leader[k]; ok {
				t.repeatOf = &l
				continue
			}
			leader[k] = n
		}
	}

	// Walk benchmarked trials in trial order keeping the non-dominated set of
	// feasible points; the hypervolume is recomputed only when that set changes.
	// The final set is the Pareto front (study.ParetoFront gives the same set).
	// With repeats, an entry's values change as its runs arrive, so the set
	// is rebuilt at each trial.
	var frontNums []int
	var history []HVPoint
	hv, benchmarked := 0.0, 0
	for _, n := range nums {
		t := r.trials[n]
		if t.o.State == StateRejected {
			continue
		}
		benchmarked++
		if repeats {
			lead := t
			if t.repeatOf != nil {
				lead = r.trials[*t.repeatOf]
			}
			lead.runs = append(lead.runs, n)
			r.foldRuns(lead)
			frontNums = r.repeatFront(nums, n, dirs)
			hv = 0
			if ref != nil && len(frontNums) > 0 {
				pts := make([][]float64, len(frontNums))
				for i, m := range frontNums {
					pts[i] = r.trials[m].mean
				}
				hv = study.Hypervolume(pts, dirs, ref)
			}
		} else if t.feasible && !dominatedByAny(t.values, frontNums, r.trials, dirs) {
			kept := frontNums[:0:0]
			for _, m := range frontNums {
				if !study.Dominates(t.values, r.trials[m].values, dirs) {
					kept = append(kept, m)
				}
			}
			frontNums = append(kept, n)
			if ref != nil {
				pts := make([][]float64, len(frontNums))
				for i, m := range frontNums {
					pts[i] = r.trials[m].values
				}
				hv = study.Hypervolume(pts, dirs, ref)
			}
		}
		history = append(history, HVPoint{TrialNumber: n, Benchmarked: benchmarked, Hypervolume: hv, FrontSize: len(frontNums)})
	}

	var baseline *trial
	if t, ok := r.trials[0]; ok && t.values != nil {
		baseline = t
	}

	doc := FrontDoc{
		StudyName:   r.study,
		NTrials:     counts.Benchmarked,
		ParetoFront: []FrontMember{},
		Units:       map[string]string{},
		Hypervolume: hv,
		Counts:      counts,
		GPUHours:    gpuSeconds / 3600,
		Curves:      curvesInfo(spec),
		StartedAt:   r.startedAt,
		UpdatedAt:   r.latest,
	}
	for _, o := range spec.Objectives {
		doc.Objectives = append(doc.Objectives, ObjectiveInfo{
			Name: o.Name, Direction: string(o.Direction), Unit: o.Unit, Metric: o.Metric, Scale: o.Scale,
		})
		if o.Unit != "" {
			doc.Units[o.Name] = o.Unit
		}
	}
	if ref != nil {
		doc.ReferencePoint = r.byObjective(ref)
		doc.Reference = &ReferenceInfo{AnchorTrial: anchor, Rule: ReferenceRule}
	}
	if baseline != nil {
		doc.Baseline = &BaselineInfo{
			TrialNumber:    0,
			Objectives:     r.byObjective(baseline.values),
			SGLangDefaults: spec.Sampler.BaselineEnabled(),
		}
	}
	for _, n := range frontNums {
		t := r.trials[n]
		t.onFront = true
		doc.ParetoFront = append(doc.ParetoFront, r.member(t, baseline))
	}

	res := ResultsDoc{FrontDoc: doc, Trials: make([]TrialRecord, 0, len(nums)), HypervolumeHistory: history}
	if res.HypervolumeHistory == nil {
		res.HypervolumeHistory = []HVPoint{}
	}
	for _, n := range nums {
		res.Trials = append(res.Trials, r.record(r.trials[n]))
	}
	r.front, r.results = doc, res
}

// foldRuns recomputes a repeated configuration's entry from its runs so
// far: it holds up while every run completed feasibly; its values are the
// mean over the runs.
func (r *Report) foldRuns(lead *trial) {
	lead.holds, lead.mean = true, nil
	var sum []float64
	for _, m := range lead.runs {
		u := r.trials[m]
		if !u.feasible {
			lead.holds = false
			continue
		}
		if sum == nil {
			sum = make([]float64, len(u.values))
		}
		for i, v := range u.values {
			sum[i] += v
		}
	}
	if sum == nil {
		return
	}
	ok := 0
	for _, m := range lead.runs {
		if r.trials[m].feasible {
			ok++
		}
	}
	for i := range sum {
		sum[i] /= float64(ok)
	}
	lead.mean = sum
}

// repeatFront is the front of the repeated-configuration entries known once
// trial upTo is: the entries that hold up, by their mean, in trial order.
func (r *Report) repeatFront(nums []int, upTo int, dirs []study.Direction) []int {
	var cands []int
	var pts [][]float64
	for _, n := range nums {
		if n > upTo {
			break
		}
		t := r.trials[n]
		if t.repeatOf != nil || len(t.runs) == 0 || !t.holds || t.mean == nil {
			continue
		}
		cands = append(cands, n)
		pts = append(pts, t.mean)
	}
	var out []int
	for _, i := range study.ParetoFront(pts, dirs) {
		out = append(out, cands[i])
	}
	return out
}

// spread summarises each objective over a repeated entry's feasible runs.
func (r *Report) spread(lead *trial) map[string]RunSpread {
	out := map[string]RunSpread{}
	for i, o := range r.spec.Objectives {
		var vs []float64
		for _, m := range lead.runs {
			if u := r.trials[m]; u.feasible {
				vs = append(vs, u.values[i])
			}
		}
		if len(vs) == 0 {
			continue
		}
		s := RunSpread{N: len(vs), Min: vs[0], Max: vs[0]}
		for _, v := range vs {
			s.Mean += v / float64(len(vs))
			s.Min, s.Max = math.Min(s.Min, v), math.Max(s.Max, v)
		}
		if len(vs) > 1 {
			for _, v := range vs {
				s.Std += (v - s.Mean) * (v - s.Mean)
			}
			s.Std = math.Sqrt(s.Std / float64(len(vs)-1))
		}
		out[o.Name] = s
	}
	return out
}

// paramsKey identifies a configuration: its normalised parameters, sorted.
func paramsKey(p map[string]any) string { return study.ParamsKey(p) }

func dominatedByAny(p []float64, front []int, trials map[int]*trial, dirs []study.Direction) bool {
	for _, m := range front {
		if study.Dominates(trials[m].values, p, dirs) {
			return true
		}
	}
	return false
}

func (r *Report) byObjective(values []float64) map[string]float64 {
	out := make(map[string]float64, len(values))
	for i, o := range r.spec.Objectives {
		out[o.Name] = values[i]
	}
	return out
}

func (r *Report) member(t *trial, baseline *trial) FrontMember {
	spec := &r.spec
	values := t.values
	if t.mean != nil {
		values = t.mean
	}
	m := FrontMember{
		TrialNumber:   t.o.Trial,
		Parameters:    t.params,
		State:         StateComplete,
		Objectives:    r.byObjective(values),
		Units:         map[string]string{},
		LaunchCommand: r.launchCommand(t),
		Metrics:       map[string]float64{},
		Runner:        t.o.Runner,
		GPUModel:      t.o.GPUModel,
		SGLangVersion: t.o.SGLangVersion,
	}
	for _, name := range t.o.AdjustedParams {
		if m.Adjusted == nil {
			m.Adjusted = map[string]any{}
		}
		m.Adjusted[name] = t.o.EffectiveParams[name]
	}
	m.TTFT, m.TPS = seedValues(m.Objectives, t.o.Metrics)
	for _, o := range spec.Objectives {
		if o.Unit != "" {
			m.Units[o.Name] = o.Unit
		}
	}
	selected := append(slices.Clone(headlineMetrics), capacityMetrics...)
	for _, o := range spec.Objectives {
		selected = append(selected, o.Metric)
	}
	for _, c := range spec.Constraints {
		selected = append(selected, c.Metric)
	}
	for _, name := range selected {
		if v, ok := t.o.Metrics[name]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			m.Metrics[name] = v
			if u := t.o.Units[name]; u != "" {
				m.Units[name] = u
			}
		}
	}
	m.WorkloadObjectives = r.workloadObjectives(t)
	m.Curve = curveOf(t.o.LoadPoints)
	m.Capacity = capacityOf(spec, t.o.Metrics)
	if len(t.runs) > 0 && r.spec.Sampler.Repeats > 0 {
		m.Runs = slices.Clone(t.runs)
		m.Spread = r.spread(t)
	}
	if baseline != nil {
		for i, o := range spec.Objectives {
			b, v := baseline.values[i], values[i]
			if b <= 0 || v <= 0 {
				continue
			}
			if m.GainOverBaseline == nil {
				m.GainOverBaseline = map[string]float64{}
			}
			if o.Direction == study.Minimize {
				m.GainOverBaseline[o.Name] = b / v
			} else {
				m.GainOverBaseline[o.Name] = v / b
			}
		}
	}
	return m
}

// workloadObjectives are each workload's own objective values (a mix only;
// the workloads that measured every objective).
func (r *Report) workloadObjectives(t *trial) map[string]map[string]float64 {
	if !r.spec.HasMix() || len(t.o.WorkloadMetrics) == 0 {
		return nil
	}
	out := map[string]map[string]float64{}
	for name, metrics := range t.o.WorkloadMetrics {
		if vals, ok := r.spec.ObjectiveValues(metrics); ok && allFinite(vals) {
			out[name] = r.byObjective(vals)
		}
	}
	return nilIfEmpty(out)
}

// seedValues returns the seed's ttft (s) and tps (output tok/s) fields.
func seedValues(objectives map[string]float64, metrics map[string]float64) (ttft, tps *float64) {
	if v, ok := objectives["ttft"]; ok {
		ttft = &v
	} else if v, ok := metrics["mean_ttft_ms"]; ok {
		s := v / 1000
		ttft = &s
	}
	if v, ok := objectives["tps"]; ok {
		tps = &v
	} else if v, ok := metrics["output_throughput"]; ok {
		tps = &v
	}
	return ttft, tps
}

// launchCommand is the runner's argv, or the one the spec implies when the
// runner did not report it.
func (r *Report) launchCommand(t *trial) []string {
	if len(t.o.LaunchCommand) > 0 {
		return t.o.LaunchCommand
	}
	args, err := r.spec.LaunchArgs(events.Params(t.o.Params))
	if err != nil {
		return nil
	}
	return append(slices.Clone(r.spec.Model.ServerCommand), args...)
}

func (r *Report) record(t *trial) TrialRecord {
	o := t.o
	rec := TrialRecord{
		TrialNumber:        o.Trial,
		State:              o.State,
		Parameters:         t.params,
		Feasible:           t.feasible,
		ParetoOptimal:      t.onFront,
		Violations:         t.violations,
		Metrics:            o.Metrics,
		Units:              o.Units,
		Reason:             o.Reason,
		WorkloadMetrics:    o.WorkloadMetrics,
		LoadPoints:         o.LoadPoints,
		WorkloadLoadPoints: o.WorkloadLoadPoints,
		FailureClass:       o.FailureClass,
		Rules:              o.Rejections,
		DuplicateOf:        o.DuplicateOf,
		RepeatOf:           t.repeatOf,
		LaunchCommand:      o.LaunchCommand,
		Runner:             o.Runner,
		Host:               o.Host,
		GPUModel:           o.GPUModel,
		GPUs:               o.GPUs,
		GPUSeconds:         o.GPUSeconds,
		Backend:            o.Backend,
		SGLangVersion:      o.SGLangVersion,
		ModelPathLoaded:    o.ModelPathLoaded,
		EffectiveParams:    o.EffectiveParams,
		AdjustedParams:     o.AdjustedParams,
		StartedAt:          o.StartedAt,
		FinishedAt:         o.FinishedAt,
		LogRef:             o.LogRef,
		LogTail:            o.LogTail,
		GPUUUIDs:           o.GPUUUIDs,
		DriverVersion:      o.DriverVersion,
		CUDAVersion:        o.CUDAVersion,
	}
	if t.values != nil {
		rec.Objectives = r.byObjective(t.values)
	}
	if o.State == StateComplete && !t.feasible && rec.Reason == "" {
		rec.Reason = "infeasible: " + joinSemicolon(t.violations)
	}
	if o.State == StateRejected && rec.Reason == "" && len(o.Rejections) > 0 {
		reasons := make([]string, len(o.Rejections))
		for i, rj := range o.Rejections {
			reasons[i] = rj.Rule + ": " + rj.Reason
		}
		rec.Reason = joinSemicolon(reasons)
	}
	return rec
}

func missingObjectives(spec *study.Spec, metrics map[string]float64) []string {
	var out []string
	for _, o := range spec.Objectives {
		v, ok := metrics[o.Metric]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("objective %s: %s was not measured", o.Name, o.Metric))
		case math.IsNaN(v) || math.IsInf(v, 0):
			out = append(out, fmt.Sprintf("objective %s: %s is not a finite number", o.Name, o.Metric))
		}
	}
	return out
}

func allFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func inc(m map[string]int, k string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k]++
	return m
}

func joinSemicolon(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
