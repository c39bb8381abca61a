package sampling

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/c-bata/goptuna"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// history is the study's record of trials. It lives in goptuna's study
// (in-memory storage): each trial is a goptuna trial whose params are the
// configuration (categorical distributions over the spec's values), whose
// state is RUNNING while pending and COMPLETE, FAIL or PRUNED once told, and
// whose system attributes ("sgtune:*") hold what goptuna has no field for:
// the trial number, the outcome kind, the objective vector, the rules a
// rejection named, the failure's class and cause.
//
// Every algorithm reads the history through the views (trial) decoded from
// goptuna's FrozenTrials: a view is rebuilt from storage after each write,
// never set on its own, so the storage is the one source of truth (decodeAll
// rebuilds every view from it; TestHistoryIsGoptunasStudy checks the two
// agree). The only derived state is the aggregate of repeat runs, a
// function of the stored runs.
type history struct {
	g        *goptuna.Study
	codec    *codec
	spec     *study.Spec
	dirs     []study.Direction
	trials   []*trial // by goptuna trial ID (record order)
	byNumber map[int]*trial
	seen     map[string]int // config key -> first trial number
	bench    []*trial       // benchmarked trials in outcome order
	// version counts the outcomes told: algorithms key caches on it.
	version int
}

// Attribute keys of the sgtune record in goptuna's system attributes.
const (
	attrNumber   = "sgtune:number"
	attrSampler  = "sgtune:sampler"
	attrRepeatOf = "sgtune:repeat_of"
	attrKey      = "sgtune:key" // only for params outside the space
	attrOutcome  = "sgtune:outcome"
	attrRules    = "sgtune:rules"
	attrClass    = "sgtune:failure_class"
	attrCause    = "sgtune:failure_cause"
	attrY        = "sgtune:objectives_min"
	attrFeasible = "sgtune:feasible"
	attrViol     = "sgtune:violation"
	attrBenchSeq = "sgtune:bench_seq"
)

func newHistory(spec *study.Spec, cd *codec, logger zerolog.Logger) (*history, error) {
	g, err := goptuna.CreateStudy(spec.StudyName,
		goptuna.StudyOptionStorage(goptuna.NewInMemoryStorage()),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMinimize),
		goptuna.StudyOptionLogger(zlog{l: logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("create goptuna study: %w", err)
	}
	return &history{g: g, codec: cd, spec: spec, dirs: spec.Directions(),
		byNumber: map[int]*trial{}, seen: map[string]int{}}, nil
}

// distribution is parameter j's goptuna distribution in the record.
func (h *history) distribution(j int) goptuna.CategoricalDistribution {
	return goptuna.CategoricalDistribution{Choices: h.codec.choices[j]}
}

// ask records a new pending trial: configuration x (nil when params do
// not fit the space; key then identifies them), made by sampler, a repeat
// run of repeatOf when not nil. attrs are extra system attributes (an
// algorithm's own bookkeeping, e.g. CMA-ES's generation).
func (h *history) ask(number int, x []int, key string, params events.Params, sampler string, repeatOf *int, attrs map[string]string) (*trial, error) {
	st := h.g.Storage
	gid, err := st.CreateNewTrial(h.g.ID)
	if err != nil {
		return nil, fmt.Errorf("goptuna create trial: %w", err)
	}
	if x != nil {
		for j, name := range h.codec.names {
			if err := st.SetTrialParam(gid, name, float64(x[j]), h.distribution(j)); err != nil {
				return nil, fmt.Errorf("goptuna set param %s: %w", name, err)
			}
		}
	}
	set := map[string]string{attrNumber: strconv.Itoa(number), attrSampler: sampler}
	if x == nil {
		set[attrKey] = key
		b, _ := json.Marshal(params)
		set["sgtune:params"] = string(b)
	}
	if repeatOf != nil {
		set[attrRepeatOf] = strconv.Itoa(*repeatOf)
	}
	for k, v := range attrs {
		set[k] = v
	}
	for k, v := range set {
		if err := st.SetTrialSystemAttr(gid, k, v); err != nil {
			return nil, fmt.Errorf("goptuna set %s: %w", k, err)
		}
	}
	if gid != len(h.trials) {
		return nil, fmt.Errorf("goptuna trial id %d out of order (have %d trials)", gid, len(h.trials))
	}
	t := &trial{gid: gid}
	h.trials = append(h.trials, t)
	if err := h.load(t); err != nil {
		return nil, err
	}
	h.byNumber[t.number] = t
	if _, dup := h.seen[t.key]; !dup {
		h.seen[t.key] = t.number
	}
	if t.repeatOf != nil {
		t.repeatOf.repeats = append(t.repeatOf.repeats, t)
	}
	return t, nil
}

// tell writes a pending trial's outcome into goptuna and reloads its view.
func (h *history) tell(t *trial, o Outcome) error {
	st := h.g.Storage
	attrs := map[string]string{attrOutcome: o.Kind.String()}
	if len(o.Rules) > 0 {
		b, _ := json.Marshal(o.Rules)
		attrs[attrRules] = string(b)
	}
	if o.FailureClass != "" {
		attrs[attrClass] = o.FailureClass
	}
	if o.FailureCause != "" {
		attrs[attrCause] = o.FailureCause
	}
	state := goptuna.TrialStateFail
	var y []float64
	violation := 1.0
	switch o.Kind {
	case Completed, Pruned:
		if vals, ok := h.spec.ObjectiveValues(o.Metrics); ok {
			y = study.MinForm(vals, h.dirs)
		}
		viol := h.spec.Violations(o.Metrics)
		feasible := o.Kind == Completed && y != nil && len(viol) == 0 && allFinite(y)
		attrs[attrFeasible] = strconv.FormatBool(feasible)
		violation = 0
		if !feasible {
			violation = float64(max(1, len(viol)))
		}
		state = goptuna.TrialStateComplete
		if o.Kind == Pruned {
			state = goptuna.TrialStatePruned
		}
	case Rejected:
		violation = float64(max(1, len(o.Rules)))
	}
	attrs[attrViol] = strconv.FormatFloat(violation, 'g', -1, 64)
	if y != nil {
		b, _ := json.Marshal(y)
		attrs[attrY] = string(b)
	}
	if o.Kind == Completed || o.Kind == Failed || o.Kind == Pruned {
		attrs[attrBenchSeq] = strconv.Itoa(len(h.bench))
	}
	for k, v := range attrs {
		if err := st.SetTrialSystemAttr(t.gid, k, v); err != nil {
			return gErr(err)
		}
	}
	if y != nil && allFinite(y) {
		// goptuna keeps one value: the first objective in minimisation
		// form. The full vector is in attrY.
		if err := st.SetTrialValue(t.gid, y[0]); err != nil {
			return gErr(err)
		}
	} else if state == goptuna.TrialStateComplete {
		state = goptuna.TrialStateFail // completed without its objectives
	}
	if err := st.SetTrialState(t.gid, state); err != nil {
		return gErr(err)
	}
	if err := h.load(t); err != nil {
		return err
	}
	if t.benchSeq >= 0 {
		h.bench = append(h.bench, t)
	}
	switch {
	case t.repeatOf != nil:
		h.aggregate(t.repeatOf)
	case len(t.repeats) > 0:
		h.aggregate(t)
	}
	h.version++
	return nil
}

func gErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("goptuna tell: %w", err)
}

// load rebuilds t's view from its goptuna trial.
func (h *history) load(t *trial) error {
	ft, err := h.g.Storage.GetTrial(t.gid)
	if err != nil {
		return fmt.Errorf("goptuna get trial %d: %w", t.gid, err)
	}
	return h.decode(t, ft)
}

// decode fills t (whose gid is ft.ID) from a goptuna trial; repeat links
// are resolved through byNumber.
func (h *history) decode(t *trial, ft goptuna.FrozenTrial) error {
	a := ft.SystemAttrs
	n, err := strconv.Atoi(a[attrNumber])
	if err != nil {
		return fmt.Errorf("goptuna trial %d: no sgtune trial number", ft.ID)
	}
	*t = trial{gid: ft.ID, number: n, sampler: a[attrSampler], benchSeq: -1, repeats: t.repeats, y: t.y, feasible: t.feasible}
	t.x = make([]int, len(h.codec.names))
	for j, name := range h.codec.names {
		v, ok := ft.InternalParams[name]
		if !ok {
			t.x = nil
			break
		}
		t.x[j] = int(v)
	}
	if t.x != nil {
		t.key = keyOf(t.x)
	} else {
		t.key = a[attrKey]
	}
	if r, ok := a[attrRepeatOf]; ok {
		if n, err := strconv.Atoi(r); err == nil {
			if orig, ok := h.byNumber[n]; ok && orig.repeatOf == nil && orig.number != t.number {
				t.repeatOf = orig
			}
		}
	}
	if ft.State == goptuna.TrialStateRunning {
		t.status = statusPending
		return nil
	}
	switch a[attrOutcome] {
	case Completed.String():
		t.status = statusCompleted
	case Failed.String():
		t.status = statusFailed
	case Rejected.String():
		t.status = statusRejected
	case Duplicate.String():
		t.status = statusDuplicate
	case Pruned.String():
		t.status = statusPruned
	default:
		return fmt.Errorf("goptuna trial %d: unknown outcome %q", ft.ID, a[attrOutcome])
	}
	if r, ok := a[attrRules]; ok {
		_ = json.Unmarshal([]byte(r), &t.rules)
	}
	t.failClass, t.failCause = a[attrClass], a[attrCause]
	if v, ok := a[attrY]; ok {
		_ = json.Unmarshal([]byte(v), &t.ownY)
	}
	t.ownFeasible = a[attrFeasible] == "true"
	t.violation, _ = strconv.ParseFloat(a[attrViol], 64)
	if s, ok := a[attrBenchSeq]; ok {
		t.benchSeq, _ = strconv.Atoi(s)
	}
	if t.status == statusPruned {
		t.partial = t.ownY
	}
	if len(t.repeats) == 0 && t.repeatOf == nil {
		t.y, t.feasible = t.ownY, t.ownFeasible
	}
	return nil
}

// decodeAll rebuilds every view from goptuna's storage alone, in record
// order (the check that the storage is the whole record).
func (h *history) decodeAll() ([]*trial, error) {
	fts, err := h.g.Storage.GetAllTrials(h.g.ID)
	if err != nil {
		return nil, err
	}
	re := &history{codec: h.codec, spec: h.spec, dirs: h.dirs, byNumber: map[int]*trial{}}
	out := make([]*trial, 0, len(fts))
	for _, ft := range fts {
		t := &trial{}
		if err := re.decode(t, ft); err != nil {
			return nil, err
		}
		out = append(out, t)
		re.byNumber[t.number] = t
		if t.repeatOf != nil {
			t.repeatOf.repeats = append(t.repeatOf.repeats, t)
		}
	}
	for _, t := range out {
		if len(t.repeats) > 0 {
			re.aggregate(t)
		}
	}
	return out, nil
}

// aggregate folds an original trial's finished repeat runs into its
// values: the mean of every run's objectives, and feasible only while
// every finished run completed feasibly (a front member that fails or
// misses an SLO on repeat does not hold up, and drops off the front).
// A repeat run is never a point of its own.
func (h *history) aggregate(orig *trial) {
	for _, r := range orig.repeats {
		r.y, r.feasible = nil, false
	}
	orig.y, orig.feasible = orig.ownY, orig.ownFeasible
	if orig.status != statusCompleted {
		return
	}
	runs := [][]float64{}
	ok := orig.ownFeasible
	if orig.ownFeasible {
		runs = append(runs, orig.ownY)
	}
	for _, r := range orig.repeats {
		switch r.status {
		case statusCompleted:
			if r.ownFeasible {
				runs = append(runs, r.ownY)
			} else {
				ok = false
			}
		case statusFailed, statusPruned:
			ok = false
		}
	}
	orig.feasible = ok
	if len(runs) == 0 {
		return
	}
	mean := make([]float64, len(runs[0]))
	for _, y := range runs {
		for k, v := range y {
			mean[k] += v / float64(len(runs))
		}
	}
	orig.y = mean
}

// gTrials are goptuna's own trials (FrozenTrials), for the goptuna-backed
// algorithms and tests.
func (h *history) gTrials() ([]goptuna.FrozenTrial, error) {
	return h.g.Storage.GetAllTrials(h.g.ID)
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
