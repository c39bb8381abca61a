package export

import (
	"slices"
	"sort"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// paramChoices is each parameter's value list: the spec's, in its order, then
// any other value a trial ran (in trial order), so every trial's value is a
// choice and every trial shares one distribution per parameter (Optuna
// refuses two different distributions for one name).
type paramChoices struct {
	names   []string
	choices map[string][]any
}

func newParamChoices(space study.Space, trials []front.TrialRecord) paramChoices {
	pc := paramChoices{choices: map[string][]any{}}
	for _, p := range space {
		pc.names = append(pc.names, p.Name)
		pc.choices[p.Name] = slices.Clone(p.Values)
	}
	var extra []string
	for _, t := range trials {
		for _, name := range sortedKeys(t.Parameters) {
			v := t.Parameters[name]
			list, known := pc.choices[name]
			if !known {
				extra = append(extra, name)
			}
			if index(list, v) < 0 {
				pc.choices[name] = append(list, v)
			}
		}
	}
	sort.Strings(extra)
	pc.names = append(pc.names, extra...)
	return pc
}

// index is v's position in list (numbers compared by value), or -1.
func index(list []any, v any) int {
	for i, c := range list {
		if sameChoice(c, v) {
			return i
		}
	}
	return -1
}

// sameChoice compares values as SGLang would read them, but keeps a bool and
// a number apart (Python's True == 1 must not merge two choices).
func sameChoice(a, b any) bool {
	_, ab := a.(bool)
	_, bb := b.(bool)
	if ab != bb {
		return false
	}
	return study.ValueEqual(a, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
