package study

import "math"

// ReferenceRule states, in words, how ReferencePoint derives the fixed
// hypervolume reference point from an anchor trial. The reporter writes it
// into every front document and results file; the sampler benchmark uses the
// same rule, so their hypervolumes are on one scale.
const ReferenceRule = "anchor = trial 0 if completed, else the lowest-numbered completed trial; " +
	"minimize: v+|v| (2v), maximize: v-|v| (0); v=0: +1/-1"

// ReferencePoint derives the fixed hypervolume reference point from the
// anchor trial's objective values (normally the baseline, SGLang's
// defaults), one per objective in the objectives' own units:
//
//	minimise: ref = v + |v|   (2v for a positive metric: twice the baseline's TTFT)
//	maximise: ref = v - |v|   (0 for a positive metric: no throughput at all)
//	v = 0:    ref = +1 (minimise) or -1 (maximise)
//
// The point does not move as trials accumulate, so hypervolumes measured
// against it are comparable from trial to trial and between studies that
// share the anchor.
func ReferencePoint(anchor []float64, dirs []Direction) []float64 {
	ref := make([]float64, len(anchor))
	for i, v := range anchor {
		switch {
		case v == 0 && dirs[i] == Maximize:
			ref[i] = -1
		case v == 0:
			ref[i] = 1
		case dirs[i] == Maximize:
			ref[i] = v - math.Abs(v)
		default:
			ref[i] = v + math.Abs(v)
		}
	}
	return ref
}
