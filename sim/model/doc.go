// Package model is sglang-sim's performance model of an SGLang server: pure
// functions and a deterministic scheduler state machine, with no I/O, no
// goroutines and no wall clock (randomness comes from passed seeds).
//
// NewPlan resolves a launch Config against a Hardware (GPU preset and count)
// and a Model (shape preset) the way SGLang does at launch: defaults that
// depend on GPU memory, silent adjustments, and failures (*LaunchError with
// a class, "oom" or "crash", and SGLang's exception text). A Plan's methods
// give the per-step times (DecodeStepSeconds, PrefillSeconds,
// PrefillChunkSeconds), the startup timeline (StartupPhases,
// StartupSeconds) and the KV capacity (KVCapacityTokens).
//
// Engine is one replica's continuous-batching scheduler in virtual time.
// The simulator server plays its iterations with real timers; Evaluate runs
// it in virtual time to give the expected, noise-free result of a whole
// bench_serving-style benchmark, fast enough for offline sampler benchmarks.
//
// Every constant and formula, with its source, is listed in docs/simulator.md.
package model
