package front

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"

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

// nilIfEmpty is m, or nil when m is empty.
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

// derivation is what compute has derived from the trials so far, step by step.
type derivation struct {
	dirs       []study.Direction
	nums       []int // trial numbers, in order
	counts     Counts
	gpuSeconds float64
	anchor     int       // the reference point's anchor trial (-1: none)
	ref        []float64 // the hypervolume reference point (nil: none)
	repeats    bool      // whether one configuration's trials are one entry
	frontNums  []int     // the front's trials (entries' leaders with repeats)
	history    []HVPoint
	hv         float64
	baseline   *trial // trial 0 when it has objective values
}

// compute derives the documents from the trials, once per change.
func (r *Report) compute() {
	if !r.dirty {
		return
	}
	r.dirty = false
	spec := &r.spec
	d := derivation{dirs: spec.Directions(), nums: slices.Sorted(maps.Keys(r.trials))}
	d.counts, d.gpuSeconds, d.anchor = r.judgeTrials(d.nums)
	if d.anchor >= 0 {
		d.ref = ReferencePoint(r.trials[d.anchor].values, d.dirs)
	}

	// Repeats: benchmarked trials of one configuration are one front entry,
	// led by the lowest-numbered (the sampler runs a config twice only as a
	// repeat; the validator rejects any other duplicate).
	d.repeats = spec.Sampler.Repeats > 0
	if d.repeats {
		r.groupRepeats(d.nums)
	}

	d.frontNums, d.history, d.hv = r.walkFront(d.nums, d.dirs, d.ref, d.repeats)
	if t, ok := r.trials[0]; ok && t.values != nil {
		d.baseline = t
	}
	doc := r.frontDoc(&d)
	res := r.resultsDoc(doc, d.nums, d.history)
	r.front, r.results = doc, res
}

// judgeTrials judges every trial afresh and returns the counts, GPU-seconds and anchor (-1: none).
func (r *Report) judgeTrials(nums []int) (Counts, float64, int) {
	spec := &r.spec
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
	return counts, gpuSeconds, anchor
}

// groupRepeats points each repeat run at its configuration's lowest-numbered trial (repeatOf).
func (r *Report) groupRepeats(nums []int) {
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

// walkFront returns the front's trials, the hypervolume history and the final hypervolume.
func (r *Report) walkFront(nums []int, dirs []study.Direction, ref []float64, repeats bool) ([]int, []HVPoint, float64) {
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
	return frontNums, history, hv
}

// frontDoc is the front document; it marks the front's trials onFront.
func (r *Report) frontDoc(d *derivation) FrontDoc {
	spec := &r.spec
	doc := FrontDoc{
		StudyName:   r.study,
		NTrials:     d.counts.Benchmarked,
		ParetoFront: []FrontMember{},
		Units:       map[string]string{},
		Hypervolume: d.hv,
		Counts:      d.counts,
		GPUHours:    d.gpuSeconds / 3600,
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
	if d.ref != nil {
		doc.ReferencePoint = r.byObjective(d.ref)
		doc.Reference = &ReferenceInfo{AnchorTrial: d.anchor, Rule: ReferenceRule}
	}
	if d.baseline != nil {
		doc.Baseline = &BaselineInfo{
			TrialNumber:    0,
			Objectives:     r.byObjective(d.baseline.values),
			SGLangDefaults: spec.Sampler.BaselineEnabled(),
		}
	}
	for _, n := range d.frontNums {
		t := r.trials[n]
		t.onFront = true
		doc.ParetoFront = append(doc.ParetoFront, r.member(t, d.baseline))
	}
	return doc
}

// resultsDoc is the results-file document around the front document doc.
func (r *Report) resultsDoc(doc FrontDoc, nums []int, history []HVPoint) ResultsDoc {
	res := ResultsDoc{FrontDoc: doc, Trials: make([]TrialRecord, 0, len(nums)), HypervolumeHistory: history}
	if res.HypervolumeHistory == nil {
		res.HypervolumeHistory = []HVPoint{}
	}
	for _, n := range nums {
		res.Trials = append(res.Trials, r.record(r.trials[n]))
	}
	return res
}

// dominatedByAny reports whether any of the front's trials dominates p.
func dominatedByAny(p []float64, front []int, trials map[int]*trial, dirs []study.Direction) bool {
	for _, m := range front {
		if study.Dominates(trials[m].values, p, dirs) {
			return true
		}
	}
	return false
}

// allFinite reports whether every x is a finite number.
func allFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// inc adds one to m[k], making m when it is nil.
func inc(m map[string]int, k string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k]++
	return m
}
