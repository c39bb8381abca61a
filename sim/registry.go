package sim

import "github.com/sgtune/sgtune/pkg/study"

// flagSources lists where flag specs come from, highest precedence first:
// the shared parameter registry (one source of truth for flag spellings),
// then the simulator's own list for flags the registry does not carry.
func flagSources() []flagSource {
	return []flagSource{registrySource{}, simFlags}
}

// registrySource adapts study.Registry to flag specs.
type registrySource struct{}

func (registrySource) specs() []flagSpec {
	defs := study.Registry()
	out := make([]flagSpec, 0, len(defs))
	for _, d := range defs {
		s := flagSpec{name: d.Name, flags: append([]string{d.Flag}, d.Aliases...), choices: d.Choices, def: d.Default}
		switch d.Kind {
		case study.KindInt:
			s.kind = kindInt
		case study.KindFloat:
			s.kind = kindFloat
		case study.KindBool:
			s.kind = kindBool
		default:
			s.kind = kindString
		}
		out = append(out, s)
	}
	return out
}
