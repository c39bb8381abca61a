// Package loadgen drives a streaming benchmark against an SGLang-compatible
// server and aggregates the measurements the way sglang.bench_serving does
// (same metric names and units: milliseconds and per-second rates).
//
// Workloads come from events.Workload: random token ids through POST
// /generate, or prompts from a file through POST /v1/completions (or
// /generate with text); fixed or ranged lengths drawn like bench_serving's
// --random-range-ratio; a closed loop at MaxConcurrency or an open loop with
// Poisson arrivals at RequestRate; warm-up requests that are not counted.
// Everything random is drawn from the workload's seed.
package loadgen

import "errors"

// ErrTimeout is returned when the whole benchmark exceeds its timeout.
var ErrTimeout = errors.New("loadgen: benchmark timed out")

// ErrAllFailed is returned when no measured request completed.
var ErrAllFailed = errors.New("loadgen: every request failed")

// ErrBadWorkload is returned for a workload that cannot be run (unknown
// backend or dataset, no prompts, no requests).
var ErrBadWorkload = errors.New("loadgen: bad workload")

// ErrStalled is returned when a stream sent nothing for the idle timeout: the
// server hung. The run is aborted at once; the Result is returned too.
var ErrStalled = errors.New("loadgen: a stream stalled")
