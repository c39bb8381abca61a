// Package benchmark measures the sampler's sample efficiency offline: it runs
// whole studies (propose, judge, measure, tell) against an Evaluator that
// stands in for the validator and a runner, searches for the best front it
// can find with a long search, and reports each sampler's hypervolume as a
// fraction of that best known front.
//
// It is pure: no NATS, no clock in the results (proposal times are measured
// but reported apart), randomness from the seeds it is given. The concrete
// Evaluator (the simulator's performance model and the validator's rules)
// is wired in by cmd/samplerbench.
package benchmark
