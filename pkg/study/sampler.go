package study

import (
	"fmt"
	"strings"
)

// Sampling algorithms a spec can choose (sampler.algorithm). Names say what
// runs.
const (
	// AlgoGPEHVI is a Gaussian process per objective with expected
	// hypervolume improvement and a learned feasibility model (the default).
	AlgoGPEHVI = "gp-ehvi"
	// AlgoMOTPE is multi-objective TPE: the density ratio of Parzen
	// estimators of the best and the other trials.
	AlgoMOTPE = "motpe"
	// AlgoScalarizedTPE is goptuna's TPE, one proposal per random
	// Chebyshev scalarisation of the objectives (ParEGO's scheme).
	AlgoScalarizedTPE = "scalarized-tpe"
	// AlgoTPE is goptuna's TPE; single-objective studies only.
	AlgoTPE = "tpe"
	// AlgoCMAES is goptuna's CMA-ES over the values' indices;
	// single-objective studies only.
	AlgoCMAES = "cmaes"
	// AlgoNSGA2 is steady-state NSGA-II with Deb's constraint handling.
	AlgoNSGA2 = "nsga2"
	// AlgoRandom is uniform random search.
	AlgoRandom = "random"
)

// DefaultAlgorithm is the algorithm of a spec that names none; chosen by
// the sampler benchmark (docs/benchmarks.md, "Sampler").
const DefaultAlgorithm = AlgoGPEHVI

// Acquisitions of the deprecated spelling "motpe" + sampler.acquisition.
const (
	AcqEHVI = "ehvi"
	AcqTPE  = "tpe"
)

// Algorithms lists every algorithm name, the default first.
func Algorithms() []string {
	return []string{AlgoGPEHVI, AlgoMOTPE, AlgoScalarizedTPE, AlgoTPE, AlgoCMAES, AlgoNSGA2, AlgoRandom}
}

// SingleObjectiveOnly reports whether an algorithm optimises one objective only.
func SingleObjectiveOnly(algo string) bool { return algo == AlgoTPE || algo == AlgoCMAES }

// ResolveAlgorithm returns the algorithm that runs for algo and acquisition
// as a spec spells them (algo "" is the default), and a deprecation note
// when the spelling is an old one:
//
//	motpe + acquisition ehvi    -> gp-ehvi (what "motpe" used to run by default)
//	motpe + acquisition tpe     -> motpe
//	gp-ehvi + acquisition tpe   -> motpe (the old "acquisition: tpe" over the default algorithm)
//	gp-ehvi + acquisition ehvi  -> gp-ehvi
//
// Any other acquisition, an acquisition with another algorithm, an unknown
// algorithm, or a single-objective algorithm for a study of several
// objectives (nObjectives > 1) is an error naming it.
func ResolveAlgorithm(algo, acquisition string, nObjectives int) (name, deprecation string, err error) {
	if algo == "" {
		algo = DefaultAlgorithm
	}
	known := false
	for _, a := range Algorithms() {
		known = known || a == algo
	}
	if !known {
		return "", "", fmt.Errorf("unknown algorithm %q (known: %s)", algo, strings.Join(Algorithms(), ", "))
	}
	name = algo
	switch acquisition {
	case "":
	case AcqEHVI, AcqTPE:
		switch {
		case algo == AlgoMOTPE && acquisition == AcqEHVI:
			name = AlgoGPEHVI
			deprecation = `sampler: "algorithm: motpe" with "acquisition: ehvi" is the old spelling of "algorithm: gp-ehvi" (a Gaussian process with expected hypervolume improvement); "motpe" now runs MOTPE`
		case algo == AlgoMOTPE:
			deprecation = `sampler: "acquisition: tpe" is no longer needed: "algorithm: motpe" runs MOTPE`
		case algo == AlgoGPEHVI && acquisition == AcqTPE:
			name = AlgoMOTPE
			deprecation = `sampler: "acquisition: tpe" is the old spelling of "algorithm: motpe"`
		case algo == AlgoGPEHVI:
			deprecation = `sampler: "acquisition: ehvi" is no longer needed: "algorithm: gp-ehvi" says it`
		default:
			return "", "", fmt.Errorf("acquisition %q: only the old spelling motpe + acquisition ehvi|tpe takes one, not algorithm %q", acquisition, algo)
		}
	default:
		return "", "", fmt.Errorf("unknown acquisition %q (known: ehvi, tpe; deprecated: say the algorithm instead, gp-ehvi or motpe)", acquisition)
	}
	if nObjectives > 1 && SingleObjectiveOnly(name) {
		return "", "", fmt.Errorf("algorithm %q is goptuna's single-objective sampler and the study has %d objectives (use %s or %s)",
			name, nObjectives, AlgoScalarizedTPE, DefaultAlgorithm)
	}
	return name, deprecation, nil
}

// Algorithm returns the algorithm that runs for the spec and the deprecation
// note of its spelling (ResolveAlgorithm); the spec must be valid.
func (s Spec) Algorithm() (name, deprecation string) {
	name, deprecation, err := ResolveAlgorithm(s.Sampler.Algorithm, s.Sampler.Acquisition, len(s.Objectives))
	if err != nil {
		return DefaultAlgorithm, ""
	}
	return name, deprecation
}
