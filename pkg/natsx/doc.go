// Package natsx is sgtune's one NATS layer: connecting, provisioning the
// streams and buckets of pkg/events, the consume loop with the one ack policy,
// publishing with deterministic ids, KV compare-and-swap updates and stream
// replay. Services' adapters use it so the ack policy cannot drift between
// copies (STYLE.md habit 3).
//
// The ack policy, written down once (Decide maps a handler's verdict to a
// Decision, Settle carries it out; Consume and the runner's claim loop both
// use them):
//
//	nil                         -> DoubleAck
//	Permanent(err)              -> copy to the dead-letter stream (+ a FAILED outcome
//	                               for trial messages when asked), TermWithReason
//	Defer(err, d)               -> NakWithDelay(d), never dead-lettered: another live
//	                               process holds the work (a leased trial) and settles it
//	any error while stopping    -> hand back: Nak (or NakWithDelay(Policy.HandBackDelay))
//	any other error on delivery
//	  MaxDeliver                -> dead letter, then TermWithReason
//	RetryAfter(err, d)          -> NakWithDelay(d)
//	any other error             -> NakWithDelay(Backoff(delivered))
//
// Long work keeps its message with KeepInProgress (InProgress every third of
// AckWait).
package natsx
