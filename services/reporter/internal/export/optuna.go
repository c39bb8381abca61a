package export

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Optuna's journal operation codes (optuna/storages/journal: JournalOperation).
const (
	opCreateStudy         = 0
	opSetStudyUserAttr    = 2
	opCreateTrial         = 4
	opSetTrialParam       = 5
	opSetTrialStateValues = 6
	opSetTrialUserAttr    = 8
)

// Optuna's StudyDirection and TrialState values.
const (
	directionMinimize = 1
	directionMaximize = 2

	stateRunning  = 0
	stateComplete = 1
	statePruned   = 2
	stateFail     = 3
)

// workerID marks every operation as this export's: Optuna only compares it
// with its own workers' ids (which never match), as for any other process.
const workerID = "sgtune-export"

// optunaTime is the timestamp format Optuna writes (isoformat, microseconds,
// no zone); sgtune's times are written in UTC.
const optunaTime = "2006-01-02T15:04:05.000000"

// OptunaJournal writes doc as an Optuna JournalStorage log: one JSON
// operation per line, exactly the operations Optuna itself appends when a
// study is created, its trials asked and told (see the package doc for the
// state mapping). space gives the parameters' value lists.
func OptunaJournal(w io.Writer, doc front.ResultsDoc, space study.Space) error {
	j := &journal{w: bufio.NewWriter(w)}
	dirs := make([]int, len(doc.Objectives))
	for i, o := range doc.Objectives {
		dirs[i] = directionMinimize
		if o.Direction == string(study.Maximize) {
			dirs[i] = directionMaximize
		}
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%w: study %s has no objectives", ErrNothingToExport, doc.StudyName)
	}
	j.op(opCreateStudy, map[string]any{"study_name": doc.StudyName, "directions": dirs})
	for _, attr := range studyAttrs(doc) {
		j.op(opSetStudyUserAttr, map[string]any{"study_id": 0, "user_attr": map[string]any{attr.key: attr.value}})
	}

	choices := newParamChoices(space, doc.Trials)
	values := completeValues(doc)
	fallback := firstTime(doc.StartedAt, doc.UpdatedAt, time.Unix(0, 0))
	next := 0 // Optuna numbers a study's trials 0, 1, ...: fill gaps to keep sgtune's numbers.
	for _, t := range doc.Trials {
		for ; next < t.TrialNumber; next++ {
			j.op(opCreateTrial, map[string]any{"study_id": 0, "datetime_start": fallback.UTC().Format(optunaTime)})
			j.trialAttr(next, "sgtune_trial", next)
			j.trialAttr(next, "sgtune_state", "IN_FLIGHT")
		}
		next = t.TrialNumber + 1
		start := firstTime(t.StartedAt, t.FinishedAt, fallback)
		end := firstTime(t.FinishedAt, t.StartedAt, fallback)
		id := t.TrialNumber
		j.op(opCreateTrial, map[string]any{"study_id": 0, "datetime_start": start.UTC().Format(optunaTime)})
		for _, name := range choices.names {
			v, ok := t.Parameters[name]
			if !ok {
				continue
			}
			list := choices.choices[name]
			dist, err := json.Marshal(map[string]any{"name": "CategoricalDistribution", "attributes": map[string]any{"choices": list}})
			if err != nil {
				return fmt.Errorf("trial %d: parameter %s: %w", id, name, err)
			}
			j.op(opSetTrialParam, map[string]any{
				"trial_id": id, "param_name": name, "param_value_internal": index(list, v), "distribution": string(dist),
			})
		}
		for _, attr := range trialAttrs(t) {
			j.trialAttr(id, attr.key, attr.value)
		}
		state, vals := optunaState(t, values)
		j.op(opSetTrialStateValues, map[string]any{
			"trial_id": id, "state": state, "values": vals, "datetime_complete": end.UTC().Format(optunaTime),
		})
	}
	return j.flush()
}

// optunaState maps a trial to Optuna's state and values (see the package doc).
func optunaState(t front.TrialRecord, complete map[int][]float64) (int, []float64) {
	if v, ok := complete[t.TrialNumber]; ok {
		return stateComplete, v
	}
	switch {
	case t.RepeatOf != nil:
		return statePruned, nil
	case t.State == front.StateRejected, strings.EqualFold(t.State, "PRUNED"), strings.EqualFold(t.State, "STOPPED"):
		return statePruned, nil
	}
	return stateFail, nil
}

// completeValues gives the objective values of the trials sgtune's front is
// chosen from, by trial number: feasible completed trials; with repeats, the
// first run of each configuration whose runs all held up, valued at their
// mean (front members carry it; others are averaged here the same way).
func completeValues(doc front.ResultsDoc) map[int][]float64 {
	objectiveValues := func(m map[string]float64) ([]float64, bool) {
		out := make([]float64, len(doc.Objectives))
		for i, o := range doc.Objectives {
			v, ok := m[o.Name]
			if !ok {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	}
	runs := map[int][]front.TrialRecord{}
	for _, t := range doc.Trials {
		if t.State != front.StateComplete && t.State != front.StateFailed {
			continue
		}
		lead := t.TrialNumber
		if t.RepeatOf != nil {
			lead = *t.RepeatOf
		}
		runs[lead] = append(runs[lead], t)
	}
	out := map[int][]float64{}
	for lead, rs := range runs {
		if rs[0].TrialNumber != lead {
			continue // the lead itself has no record (cannot happen for a consistent document)
		}
		var sum []float64
		holds := true
		for _, r := range rs {
			v, ok := objectiveValues(r.Objectives)
			if !r.Feasible || r.State != front.StateComplete || !ok {
				holds = false
				break
			}
			if sum == nil {
				sum = make([]float64, len(v))
			}
			for i := range v {
				sum[i] += v[i]
			}
		}
		if !holds || sum == nil {
			continue
		}
		for i := range sum {
			sum[i] /= float64(len(rs))
		}
		out[lead] = sum
	}
	for _, m := range doc.ParetoFront {
		if v, ok := objectiveValues(m.Objectives); ok {
			out[m.TrialNumber] = v
		}
	}
	return out
}

type attr struct {
	key   string
	value any
}

// studyAttrs are the study's user attributes: what sgtune knows of it that
// Optuna has no field for.
func studyAttrs(doc front.ResultsDoc) []attr {
	out := []attr{
		{"sgtune_study", doc.StudyName},
		{"objectives", doc.Objectives},
		{"n_trials", doc.NTrials},
		{"hypervolume", doc.Hypervolume},
		{"counts", doc.Counts},
	}
	if doc.ReferencePoint != nil {
		out = append(out, attr{"reference_point", doc.ReferencePoint})
	}
	if doc.Baseline != nil {
		out = append(out, attr{"baseline_trial", doc.Baseline.TrialNumber})
	}
	front := make([]int, len(doc.ParetoFront))
	for i, m := range doc.ParetoFront {
		front[i] = m.TrialNumber
	}
	return append(out, attr{"pareto_front_trials", front})
}

// trialAttrs are a trial's user attributes: sgtune's number and state, every
// metric, and whatever explains the outcome.
func trialAttrs(t front.TrialRecord) []attr {
	out := []attr{
		{"sgtune_trial", t.TrialNumber},
		{"sgtune_state", t.State},
		{"feasible", t.Feasible},
		{"pareto_optimal", t.ParetoOptimal},
	}
	for _, k := range sortedKeys(t.Metrics) {
		out = append(out, attr{k, t.Metrics[k]})
	}
	add := func(key string, value any, present bool) {
		if present {
			out = append(out, attr{key, value})
		}
	}
	add("objectives", t.Objectives, len(t.Objectives) > 0)
	add("units", t.Units, len(t.Units) > 0)
	add("reason", t.Reason, t.Reason != "")
	add("failure_class", t.FailureClass, t.FailureClass != "")
	add("violations", t.Violations, len(t.Violations) > 0)
	if len(t.Rules) > 0 {
		rules := make([]string, len(t.Rules))
		for i, r := range t.Rules {
			rules[i] = r.Rule
		}
		out = append(out, attr{"rejected_by", rules})
	}
	if t.RepeatOf != nil {
		out = append(out, attr{"repeat_of", *t.RepeatOf})
	}
	if t.DuplicateOf != nil {
		out = append(out, attr{"duplicate_of", *t.DuplicateOf})
	}
	add("launch_command", strings.Join(t.LaunchCommand, " "), len(t.LaunchCommand) > 0)
	add("runner", t.Runner, t.Runner != "")
	add("host", t.Host, t.Host != "")
	add("gpu_model", t.GPUModel, t.GPUModel != "")
	// The GPU indices; "gpus" is the metric (their count, study.MetricGPUs),
	// which the metrics above already wrote.
	add("gpu_indices", t.GPUs, len(t.GPUs) > 0)
	add("backend", t.Backend, t.Backend != "")
	add("sglang_version", t.SGLangVersion, t.SGLangVersion != "")
	add("model_path_loaded", t.ModelPathLoaded, t.ModelPathLoaded != "")
	add("effective_params", t.EffectiveParams, len(t.EffectiveParams) > 0)
	add("adjusted_params", t.AdjustedParams, len(t.AdjustedParams) > 0)
	add("log_ref", t.LogRef, t.LogRef != "")
	return out
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// journal appends operations, remembering the first write error.
type journal struct {
	w   *bufio.Writer
	err error
}

func (j *journal) op(code int, fields map[string]any) {
	if j.err != nil {
		return
	}
	fields["op_code"] = code
	fields["worker_id"] = workerID
	b, err := json.Marshal(fields)
	if err != nil {
		j.err = fmt.Errorf("encode journal operation %d: %w", code, err)
		return
	}
	b = append(b, '\n')
	if _, err := j.w.Write(b); err != nil {
		j.err = fmt.Errorf("write journal: %w", err)
	}
}

func (j *journal) trialAttr(trial int, key string, value any) {
	j.op(opSetTrialUserAttr, map[string]any{"trial_id": trial, "user_attr": map[string]any{key: value}})
}

func (j *journal) flush() error {
	if j.err != nil {
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}
