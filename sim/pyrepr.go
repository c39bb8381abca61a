package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// serverArgsRepr renders the effective args like Python's dataclass repr.
func (s *server) serverArgsRepr() string {
	args := s.effectiveArgs()
	var b strings.Builder
	b.WriteString("ServerArgs(")
	names := make([]string, 0, len(args))
	for _, sp := range s.sa.table.specs {
		names = append(names, sp.name)
	}
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(pyRepr(args[n]))
	}
	b.WriteByte(')')
	return b.String()
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case float64:
		return pyFloat(x)
	case []int:
		return pyList(x)
	default:
		return fmt.Sprint(x)
	}
}

func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

func pyList(xs []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(x))
	}
	b.WriteByte(']')
	return b.String()
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
