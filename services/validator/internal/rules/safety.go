package rules

import (
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

const safetySource = "sgtune: the validator only forwards values from the study's search space (docs/validation.md)"

// safetyRules are always on: nothing outside the spec's domain reaches a
// runner, and no value can become a flag of its own.
func safetyRules() []Rule {
	return []Rule{
		{
			ID: "safety.unknown_param", Set: SetSafety, Source: safetySource,
			Summary: "Every parameter must be a launch_server argument sgtune knows and one the study searches.",
			Check:   checkUnknownParams,
		},
		{
			ID: "safety.value_type", Set: SetSafety, Source: safetySource + "; pkg/study NormalizeValue",
			Summary: "Every value must have its parameter's type (integer, number, boolean, or one of SGLang's choices).",
			Check:   checkValueTypes,
		},
		{
			ID: "safety.domain", Set: SetSafety, Source: safetySource,
			Summary: "Every value must be one of the study's candidate values for that parameter (None only where it is one, or SGLang's default is).",
			Check:   checkDomain,
		},
		{
			ID: "safety.version_flags", Set: SetSafety, Source: "SGLang argparse of the pinned version (sglang.md §0, §A.1; R-T1, R-T2, R-T3)",
			Summary: "Every static arg and proposed flag must exist in the pinned SGLang version (rules.sglang_version), with a choice that version accepts.",
			Check:   checkVersionFlags,
		},
		{
			ID: "safety.flag_injection", Set: SetSafety, Source: "sgtune: argv safety (DESIGN.md §3: never through a shell)",
			Summary: "A string value may not start with '-' or contain whitespace, '=' or NUL, so it can never read as a separate flag.",
			Check:   checkInjection,
		},
	}
}

func (in Input) raw() events.Params {
	if in.Raw != nil {
		return in.Raw
	}
	return in.Params
}

func sortedKeys(p map[string]any) []string {
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func checkUnknownParams(in Input) *Violation {
	var probs []string
	for _, name := range sortedKeys(in.raw()) {
		def, ok := study.LookupParam(name)
		switch {
		case !ok:
			_, err := study.NormalizeParams(events.Params{name: nil})
			msg := "parameter " + strconv.Quote(name) + " is not a launch_server argument sgtune knows"
			if err != nil && strings.Contains(err.Error(), "did you mean") {
				msg += " (" + err.Error()[strings.Index(err.Error(), "did you mean"):]
			}
			probs = append(probs, msg)
		case def.RunnerOwned || name == "model_path":
			probs = append(probs, "parameter "+name+" is set by sgtune itself and cannot be proposed")
		case in.Space != nil:
			if _, searched := in.Space.Lookup(name); !searched {
				probs = append(probs, "parameter "+name+" is not in this study's search space")
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return violation(strings.Join(probs, "; "), ".")
}

func checkValueTypes(in Input) *Violation {
	var probs []string
	for _, name := range sortedKeys(in.raw()) {
		def, ok := study.LookupParam(name)
		if !ok {
			continue
		}
		if _, err := study.NormalizeValue(def, in.raw()[name]); err != nil {
			probs = append(probs, name+": "+err.Error())
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return violation(strings.Join(probs, "; "), ".")
}

func checkDomain(in Input) *Violation {
	if in.Space == nil {
		return nil
	}
	var probs []string
	for _, ps := range in.Space {
		v, present := in.Params[ps.Name]
		if !present {
			if _, bad := in.raw()[ps.Name]; bad {
				continue // reported by safety.value_type
			}
		}
		if v == nil {
			if in.Baseline || ps.Contains(nil) {
				continue
			}
			if d := registryDefault(ps.Name); d != nil && ps.Contains(d) {
				continue // None is SGLang's default, which the study searches
			}
			what := "is None"
			if !present {
				what = "is missing"
			}
			probs = append(probs, ps.Name+" "+what+", but the study only allows "+listValues(ps.Values))
			continue
		}
		if !ps.Contains(v) {
			probs = append(probs, ps.Name+" = "+fmtVal(v)+" is not among the study's values ("+listValues(ps.Values)+")")
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return violation(strings.Join(probs, "; "), ".")
}

func listValues(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmtVal(v)
	}
	return strings.Join(parts, ", ")
}

// unsafeString says why s could read as a flag of its own, or "" when it cannot.
func unsafeString(s string) string {
	switch {
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	case strings.ContainsRune(s, 0):
		return "contains NUL"
	case strings.ContainsRune(s, '='):
		return "contains '='"
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return "contains whitespace"
	}
	return ""
}

func checkInjection(in Input) *Violation {
	var probs []string
	check := func(where string, p map[string]any) {
		for _, name := range sortedKeys(p) {
			s, ok := p[name].(string)
			if !ok {
				continue
			}
			if why := unsafeString(s); why != "" {
				probs = append(probs, where+name+" = "+strconv.Quote(s)+" "+why)
			}
		}
	}
	check("", in.raw())
	check("static arg ", in.Static)
	if len(probs) == 0 {
		return nil
	}
	return violation(strings.Join(probs, "; "), ", so it could read as a separate flag.")
}
