// Package front is the reporter's pure domain: it folds trial outcomes into a
// study's Report (idempotently, keyed by trial number) and derives from it the
// Pareto front document stored in KV, the full results file and the console
// summary. It does no I/O besides writing to an io.Writer it is given, and
// reads no clock: times come from the outcomes.
//
// # Reference point of the hypervolume
//
// The hypervolume is measured against a reference point that does not move as
// trials accumulate, so the history is comparable from trial to trial. It is
// anchored on one trial: trial 0 when it completed (the baseline, SGLang's
// defaults when the spec's sampler.baseline is on), otherwise the
// lowest-numbered completed trial. From the anchor's objective value v:
//
//	minimise: ref = v + |v|   (2v for the usual positive metrics: twice the baseline's TTFT)
//	maximise: ref = v - |v|   (0 for the usual positive metrics: no throughput at all)
//	v = 0:    ref = +1 (minimise) or -1 (maximise)
//
// The rule, the anchor and the resulting point are stated in every document.
// Because the anchor is the lowest-numbered completed trial, the point is a
// function of the set of outcomes alone (a rebuild from the stream gives the
// same numbers); it changes only if an outcome with a lower trial number than
// the current anchor arrives late. The rule itself is study.ReferencePoint,
// shared with the sampler and its benchmark.
//
// # Repeats
//
// When the spec asks for repeats (sampler.repeats > 0), the sampler runs each
// front member's configuration again. The benchmarked trials of one
// configuration then form one entry, led by the lowest-numbered: its
// objectives are the mean over the runs (FrontMember.Runs, Spread), and it
// holds up only while every run completed feasibly, so a member that fails
// or misses an SLO on repeat drops off the front. Repeat runs are marked with
// repeat_of in the results file and are never front members of their own.
// (Two trials share a configuration only as repeats: the validator rejects
// any other duplicate.)
package front
