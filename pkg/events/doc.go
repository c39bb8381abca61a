// Package events is sgtune's wire contract: the JSON payloads its services
// exchange over NATS JetStream, and the names of every stream, subject,
// consumer and KV bucket they use. It imports only the standard library so
// that any program (a service, the CLI, a user's script) can speak the
// contract without pulling in NATS.
//
// # Subjects
//
// Every subject carries the study name and, where there is one, the trial
// number, so a consumer can filter one study and a per-trial subject holds
// at most one message where that matters:
//
//	sgtune.candidates.<study>.<trial>          CandidateProposed   (stream SGTUNE_CANDIDATES, limits)
//	sgtune.trials.<study>.g<gpus>.<trial>      TrialQueued         (stream SGTUNE_TRIALS, work queue)
//	sgtune.progress.<study>.<trial>            TrialProgress       (stream SGTUNE_PROGRESS, limits, short max age)
//	sgtune.outcomes.<study>.<trial>            CandidateRejected or TrialResult (stream SGTUNE_OUTCOMES, limits)
//	sgtune.dlq.<source>                        DeadLetter          (stream SGTUNE_DLQ, limits)
//
// A trial number has exactly one outcome: the outcomes stream is published
// with an expected-last-subject-sequence of zero, so a second result for the
// same trial (a runner redelivered minutes later) is refused by the server
// instead of being counted twice. The outcomes stream is the study's record:
// the sampler's state, the Pareto front and the results file are all rebuilt
// from it.
//
// Trials carry their GPU count in the subject (g1, g2, g4, g8, ...) because
// the work queue has one consumer per GPU count: a runner with k free GPUs
// pulls only from classes that fit, largest first, so big trials are not
// starved behind a stream of small ones.
//
// # Versioning
//
// Each payload embeds an Envelope whose Type names the payload and whose
// Version is the payload's schema version. Changes only add fields; a field
// is never renamed or given another meaning. Durable consumer names are
// never renamed either: a new name means reprocessing a whole stream.
//
// # KV buckets
//
//	pareto          key "front": the current study's Pareto front (compact one-line JSON), and
//	                key "front.<study>" for every study
//	sgtune_studies  key "<study>": the study's spec and status (StudyState)
//	sgtune_canonical key "<study>.<incarnation>.<hash>": the trial that first claimed a canonical config
//	sgtune_fleet    key "<runner id>": each live runner's inventory (RunnerStatus), expiring with the runner's heartbeat
//	sgtune_leases   keys "trial.<study>.<trial>", "study.<study>", "reporter.<instance>" (Lease) and
//	                "stop.<study>.<trial>" (StopRequest), expiring unless their holder refreshes them
package events
