// Package validator is sgtune's validator service: it checks every candidate
// the sampler proposes against named rules (the seed tuner's, SGLang's own,
// the fleet's hardware, and the always-on safety rules), canonicalises it to
// the config SGLang would really run, and either queues it as a trial for the
// runners or records a rejection that names each failing rule with a sentence
// a person can read. docs/validation.md lists every rule.
//
// Consumes: stream SGTUNE_CANDIDATES (subjects sgtune.candidates.<study>.<trial>)
// through the durable pull consumer "validator".
//
// Produces:
//   - sgtune.trials.<study>.g<gpus>.<trial>: TrialQueued (stream SGTUNE_TRIALS,
//     work queue), published with Nats-Msg-Id so a redelivery is dropped;
//   - sgtune.outcomes.<study>.<trial>: CandidateRejected (stream SGTUNE_OUTCOMES),
//     published with an expected last subject sequence of 0 (one outcome per trial);
//   - sgtune.dlq.sgtune_candidates: DeadLetter for candidates that cannot be
//     processed (malformed payload, invalid stored spec, retries exhausted).
//
// KV: reads sgtune_studies/<study> (the spec) and sgtune_fleet (live runners,
// only for studies with the hardware rule set); writes
// sgtune_canonical/<study>.<incarnation>.<hash> (which trial first ran each
// canonical config; KV Create makes the first claim win across replicas and
// restarts).
//
// Environment (LoadConfig): the NATS variables of natsx.ConnConfigFromEnv,
// SGTUNE_DEVICE_NUM, SGTUNE_VALIDATOR_WORKERS, SGTUNE_NATS_REPLICAS,
// SGTUNE_FLEET_REFRESH, SGTUNE_FLEET_WAIT.
//
// Waiting for the fleet: a candidate of a study with the hardware rule set is
// never judged against an empty fleet. With no runner alive it waits inside
// the handler (up to FleetWait, re-reading sgtune_fleet every second) while
// the consume loop sends InProgress every 10 s, so the wait spends no
// delivery of MaxDeliver; after FleetWait it is redelivered 30 s later.
// Studies without the hardware set never wait.
//
// Library use: Check (check.go) judges one configuration without NATS; it is
// what `sgtune validate` runs.
package validator
