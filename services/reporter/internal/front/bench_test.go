package front

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkRebuild10k folds a 10,000-trial study and derives both documents:
// the domain's share of the "rebuild a 10,000-trial study in 2 s" target.
func BenchmarkRebuild10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	outcomes := make([]Outcome, 10000)
	for i := range outcomes {
		switch {
		case i%10 == 3:
			outcomes[i] = failed(i, "oom")
		case i%10 == 7:
			outcomes[i] = rejected(i, "seed.gpu_count")
		default:
			outcomes[i] = complete(i, 10+90*rng.Float64(), 500+3000*rng.Float64())
		}
	}
	spec := testSpec()
	b.ResetTimer()
	for b.Loop() {
		r := NewReport(testStudy, spec, t0)
		for _, o := range outcomes {
			if _, err := r.Fold(o); err != nil {
				b.Fatal(err)
			}
		}
		_ = r.Results()
	}
}
