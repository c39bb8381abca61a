// Package reporter is sgtune's reporter service: it folds every trial outcome
// into its study's Pareto front and publishes the front where people and tools
// look for it.
//
// Consumes: stream SGTUNE_OUTCOMES, subjects sgtune.outcomes.<study>.<trial>
// (events.CandidateRejected and events.TrialResult), through the durable pull
// consumer "reporter" (explicit ack, AckWait 30 s, MaxDeliver 5). Malformed or
// unknown messages are dead-lettered to SGTUNE_DLQ and terminated.
//
// Reads: KV sgtune_studies/<study> (events.StudyState: the spec gives the
// objectives, their directions and the SLOs; StartedAt tells a fresh restart,
// which resets the study's report).
//
// Writes: KV pareto/front.<study> and pareto/front (the most recently updated
// study), compact single-line ASCII JSON (FrontDoc) so that
// `nats kv get pareto front` prints it as text (natscli shows the first 120
// bytes; use --raw | jq for all of it). Writes go through compare-and-swap and
// an outcome is acked only after both succeeded. Optionally writes the results
// file (Config.Output, the seed's optuna_results.json extended with every
// trial and the hypervolume history) after every change, atomically; and
// prints the console summary (PrintFront) when it stops.
//
// State: none durable. A study's report is rebuilt by replaying its outcomes
// the first time this process sees an outcome of that study, so the KV front
// and the results file can always be rebuilt from the outcomes stream alone
// (WriteResults does exactly that for the CLI). Folding is keyed by trial
// number, so redeliveries and replays are harmless. Run a single reporter.
package reporter
