package study

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Change is one difference between a stored study spec and the spec a
// resume brings.
type Change struct {
	// Field is where the specs differ, e.g. "space.tp_size" or "objectives".
	Field string
	// Was and Now are the two values, compact JSON.
	Was, Now string
	// Additive is true for a change that keeps every stored trial valid and
	// comparable: a parameter gaining candidate values, a larger budget or
	// time budget, sampler settings. Removing values or parameters, and any
	// change of the objectives, constraints, rules, workload or model, is not.
	Additive bool
	// Resumable is true for changes a resume takes silently (the budget and
	// the sampler's settings): the documented way to extend a study.
	Resumable bool
}

func (c Change) String() string {
	kind := "not additive"
	if c.Additive {
		kind = "additive"
	}
	return fmt.Sprintf("%s: stored %s, now %s (%s)", c.Field, c.Was, c.Now, kind)
}

// Diff lists how next differs from stored, in a stable order. Both should
// be validated specs (Validate normalises values). Study names are not
// compared (a resume is by name).
func Diff(stored, next Spec) []Change {
	var out []Change
	add := func(field string, was, now any, additive, resumable bool) {
		if reflect.DeepEqual(jsonValue(was), jsonValue(now)) {
			return
		}
		out = append(out, Change{Field: field, Was: compact(was), Now: compact(now), Additive: additive, Resumable: resumable})
	}
	// Budget and sampler: a resume may change them (raise --n-trials to extend).
	add("n_trials", stored.NTrials, next.NTrials, next.NTrials >= stored.NTrials, true)
	add("time_budget", stored.TimeBudget, next.TimeBudget, stored.TimeBudget == 0 || (next.TimeBudget != 0 && next.TimeBudget >= stored.TimeBudget), true)
	add("gpu_hours", stored.GPUHours, next.GPUHours, stored.GPUHours == 0 || (next.GPUHours != 0 && next.GPUHours >= stored.GPUHours), true)
	add("sampler", stored.Sampler, next.Sampler, true, true)
	// What a trial means: its candidates, how it is judged and measured.
	out = append(out, diffSpace(stored.Space, next.Space)...)
	add("device_num", stored.DeviceNum, next.DeviceNum, next.DeviceNum >= stored.DeviceNum, false)
	add("objectives", stored.Objectives, next.Objectives, false, false)
	add("constraints", stored.Constraints, next.Constraints, false, false)
	add("rules", stored.Rules, next.Rules, false, false)
	add("workload", stored.Workload, next.Workload, false, false)
	add("workloads", stored.Workloads, next.Workloads, false, false)
	add("model.path", stored.Model.Path, next.Model.Path, false, false)
	add("model.static_args", stored.Model.StaticArgs, next.Model.StaticArgs, false, false)
	add("model.preset", stored.Model.Preset, next.Model.Preset, false, false)
	add("model.shape", stored.Model.Shape, next.Model.Shape, false, false)
	return out
}

// diffSpace compares the searched parameters one by one: a parameter whose
// values are a superset of the stored ones changed additively; a parameter
// added or removed did not (stored trials have no value for it, or one the
// space no longer holds).
func diffSpace(stored, next Space) []Change {
	var out []Change
	for _, p := range stored {
		q, ok := next.Lookup(p.Name)
		if !ok {
			out = append(out, Change{Field: "space." + p.Name, Was: compact(p.Values), Now: "(not searched)"})
			continue
		}
		if reflect.DeepEqual(jsonValue(p.Values), jsonValue(q.Values)) {
			continue
		}
		superset := true
		for _, v := range p.Values {
			if !slices.ContainsFunc(q.Values, func(w any) bool { return ValueEqual(v, w) }) {
				superset = false
			}
		}
		out = append(out, Change{Field: "space." + p.Name, Was: compact(p.Values), Now: compact(q.Values), Additive: superset})
	}
	for _, q := range next {
		if _, ok := stored.Lookup(q.Name); !ok {
			out = append(out, Change{Field: "space." + q.Name, Was: "(not searched)", Now: compact(q.Values)})
		}
	}
	return out
}

// Refused returns the changes a resume refuses: every change that is not
// Resumable, or, with allowAdditive (--allow-spec-change), every one that is
// not Additive.
func Refused(changes []Change, allowAdditive bool) []Change {
	var out []Change
	for _, c := range changes {
		if c.Resumable || (allowAdditive && c.Additive) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// DescribeChanges lists changes one per line, indented.
func DescribeChanges(changes []Change) string {
	lines := make([]string, len(changes))
	for i, c := range changes {
		lines[i] = "  " + c.String()
	}
	return strings.Join(lines, "\n")
}

func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
