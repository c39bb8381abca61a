// Package sampling is the sampler's pure domain: a Study owns a tuning
// study's trial numbering and search state and turns the spec, the history of
// outcomes and a count n into n new proposals.
//
// It does no I/O: time is passed in (Done(now)) and randomness comes from a
// seeded generator. goptuna v0.9.0 (in-memory storage) is the study's record
// of trials and parameters, driven ask-and-tell by hand; goptuna is
// single-objective, so the multi-objective algorithms, the handling of
// infeasible trials and the stop rules are this package's own.
//
// Algorithms (spec sampler.algorithm):
//
//   - "motpe" (default): model-based multi-objective search. Its default
//     acquisition (Options.Acquisition "ehvi", bayes.go) fits a Gaussian
//     process per objective over the categorical space (gp.go), scores
//     candidates drawn around the best trials, from MOTPE's Parzen estimator
//     and uniformly, by expected hypervolume improvement against the
//     reporter's fixed reference point, and weights them by a feasibility
//     model learned from every rejection (per rule), failure (per class and
//     cause) and SLO miss (feasibility.go). Acquisition "tpe" is MOTPE's
//     density ratio alone (motpe.go), kept for comparison.
//   - "nsga2": steady-state NSGA-II with Deb's constraint handling (nsga2.go).
//   - "random": uniform search.
//
// With spec sampler.repeats, front members are run again (Proposal.RepeatOf)
// and judged by the mean of their runs; one that fails on repeat drops off.
// Benchmarks: cmd/samplerbench and docs/benchmarks.md.
//
// A Study is not safe for concurrent use: one goroutine owns it.
package sampling
