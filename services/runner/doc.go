// Package runner is sgtune's GPU runner service: one per GPU host. It
// discovers the host's GPUs (go-nvml with the build tag nvml, or a simulated
// inventory), claims queued trials that fit its free GPUs, launches an SGLang
// server (or sgtune's simulator, or a user's benchmark command) for each on
// its own GPUs and port, waits for health, drives a streaming benchmark,
// publishes the result and only then acks the trial.
//
// Consumes: stream SGTUNE_TRIALS through the shared durable pull consumers
// runners-g<N> (filter sgtune.trials.*.g<N>.*) for N = 1..host GPUs, and
// the max-deliveries advisories of those consumers through the durable
// runners-max-deliveries on SGTUNE_ADVISORIES (a trial that exhausted its
// deliveries is dead-lettered, recorded as FAILED and removed from the queue).
// Produces: sgtune.outcomes.<study>.<trial> (TrialResult),
// sgtune.progress.<study>.<trial> (TrialProgress), sgtune.dlq.sgtune_trials
// (DeadLetter), and its heartbeat in KV bucket sgtune_fleet under its id.
//
// With real SGLang the runner first makes sure the running studies' model is
// on its host (internal/prefetch: followed through KV sgtune_studies) and
// claims no trial until it is; its fleet entry says ready or why not.
//
// Configuration comes from the environment (LoadConfig); see Config for every
// field, its variable and its default. Run is the entry point.
package runner
