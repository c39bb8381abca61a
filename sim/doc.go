// Package sim is sglang-sim, an SGLang-compatible simulated server. The
// runner launches it exactly like `python3 -m sglang.launch_server` (as
// `sgtune sim <flags>` or the standalone `sglang-sim <flags>`), and it cannot
// tell the two apart: same flags, same HTTP API, same process lifecycle, with
// timing from the performance model in package sim/model.
//
// # Flags
//
// Run accepts sglang.launch_server's flags as SGLang spells them, taken from
// the shared registry (pkg/study.Registry) plus the simulator's own list of
// other SGLang flags (flags.go): `--flag value`, `--flag=value`, bare
// booleans, argparse-style unambiguous prefixes. Unknown flags, non-integer
// ints and values outside a choice list fail like argparse:
//
//	sglang-sim: error: unrecognized arguments: --foo
//	sglang-sim: error: argument --tp-size/--tensor-parallel-size: invalid int value: 'x'
//
// and Run returns a *UsageError (ExitCode 2).
//
// # Environment
//
// SGLang has no flags for the simulator's own knobs, so they come from the
// environment: SGTUNE_SIM_GPU (H100 default; H200, A100-80G, A100-40G, L40S,
// A10, B200), SGTUNE_SIM_MODEL (a model preset used when --model-path is not
// recognised), SGTUNE_SIM_TIME_SCALE (multiplies startup time only),
// SGTUNE_SIM_NOISE (relative noise, default 0.03), SGTUNE_SIM_SEED, and the
// fault injection SGTUNE_SIM_FAULT (see the Fault* constants) with
// SGTUNE_SIM_FAULT_AFTER and SGTUNE_SIM_FAULT_SECONDS. CUDA_VISIBLE_DEVICES
// gives the number of GPUs (one when unset).
//
// # Lifecycle and logs
//
// Logs go to stderr in SGLang's format ("[2025-06-01 12:00:00 TP0] Load
// weight begin. ..."). The HTTP server listens at once; /health and
// /health_generate answer 503 until the modelled startup (init, weight
// loading, KV-pool profiling, CUDA-graph capture, torch.compile, warmup,
// times SGTUNE_SIM_TIME_SCALE) has passed and "The server is fired up and
// ready to roll!" is logged, then 200. A config SGLang refuses fails at the
// phase where SGLang fails, after printing SGLang's exception text; Run then
// returns the *model.LaunchError (ExitCode 1). Cancelling ctx (SIGTERM in
// the binaries) stops accepting, ends open streams and returns nil.
//
// # Endpoints
//
// /health, /health_generate, /get_model_info, /get_server_info (effective
// server args after SGLang's silent adjustments, max_total_num_tokens,
// internal_states, version), /v1/models, /generate and /v1/completions
// (streaming in SGLang's SSE format), /flush_cache, /metrics (with
// --enable-metrics). Simulator-only: GET /sim/timings (the server's own
// per-request arrival, first-token and finish times) and GET /sim/info.
//
// docs/simulator.md documents the model, its formulas and their sources.
package sim
