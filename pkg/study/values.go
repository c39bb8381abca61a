package study

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
)

// NormalizeValue converts a decoded JSON/YAML value to the Go type of def's kind:
// nil stays nil ("None": SGLang's default, no flag); integers become int, numbers
// float64, booleans bool, strings string. The strings "None" and "null" mean nil,
// as in the seed's Python space. It returns an error naming the problem when the
// value cannot be of that kind.
func NormalizeValue(def ParamDef, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok && (s == "None" || s == "null") {
		return nil, nil
	}
	switch def.Kind {
	case KindInt:
		switch x := v.(type) {
		case int:
			return x, nil
		case int64:
			return int(x), nil
		case uint64:
			return int(x), nil
		case float64:
			if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			return int(x), nil
		}
		return nil, fmt.Errorf("want an integer, got %s", describe(v))
	case KindFloat:
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("want a finite number, got %v", x)
			}
			return x, nil
		}
		return nil, fmt.Errorf("want a number, got %s", describe(v))
	case KindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("want true or false, got %s", describe(v))
	default:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", describe(v))
		}
		if len(def.Choices) > 0 && !slices.Contains(def.Choices, s) {
			return nil, fmt.Errorf("%q is not one of SGLang's choices (%s)", s, strings.Join(def.Choices, ", "))
		}
		return s, nil
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case float64, int, int64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

// NormalizeParams normalises every value of p against the registry (see
// NormalizeValue). Unknown parameter names are an error.
func NormalizeParams(p events.Params) (events.Params, error) {
	out := make(events.Params, len(p))
	for name, v := range p {
		def, ok := LookupParam(name)
		if !ok {
			return nil, unknownParamError(name)
		}
		nv, err := NormalizeValue(def, v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		out[name] = nv
	}
	return out, nil
}

func unknownParamError(name string) error {
	if s := suggestParam(name); s != "" && s != name {
		return fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownParam, name, s)
	}
	return fmt.Errorf("%w %q", ErrUnknownParam, name)
}

// ValueEqual compares two normalised values (ints and floats by numeric value).
func ValueEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	af, aNum := Numeric(a)
	bf, bNum := Numeric(b)
	if aNum && bNum {
		return af == bf
	}
	return a == b
}

// Numeric reads an int, int64 or float64 value as a float64; ok is false for
// any other type.
func Numeric(v any) (f float64, ok bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// FormatValue renders a value the way it appears on SGLang's command line and
// in the seed's console output ("None" for nil).
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// AsInt returns an int parameter's value, or def when it is absent or nil.
func AsInt(p events.Params, name string, def int) int {
	switch x := p[name].(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return def
}

// AsBool returns a bool parameter's value, or false when absent or nil.
func AsBool(p events.Params, name string) bool {
	b, _ := p[name].(bool)
	return b
}

// AsString returns a string parameter's value, or "" when absent or nil.
func AsString(p events.Params, name string) string {
	s, _ := p[name].(string)
	return s
}

// ParamsKey is a deterministic text key of a configuration: its normalised
// values sorted by name ("tp_size=2;attention_backend=None;"), so configs equal
// up to JSON's number types (2 vs 2.0) or "None" vs null share one key.
// Parameters that do not normalise are keyed as they are.
func ParamsKey(p events.Params) string {
	norm, err := NormalizeParams(p)
	if err != nil {
		norm = p
	}
	names := make([]string, 0, len(norm))
	for k := range norm {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(FormatValue(norm[k]))
		b.WriteByte(';')
	}
	return b.String()
}
