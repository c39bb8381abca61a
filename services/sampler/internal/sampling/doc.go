// Package sampling is the sampler's pure domain: a Study owns a tuning
// study's trial numbering and search state and turns the spec, the history of
// outcomes and a count n into n new proposals.
//
// It does no I/O: time is passed in (Done(now)) and randomness comes from a
// seeded generator. goptuna v0.9.0 (in-memory storage) is the study's record
// of trials and parameters, driven ask-and-tell by hand; goptuna is
// single-objective, so the multi-objective algorithms (MOTPE, NSGA-II), the
// handling of infeasible trials and the stop rules are this package's own.
//
// A Study is not safe for concurrent use: one goroutine owns it.
package sampling
