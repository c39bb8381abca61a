// Package natsx is sgtune's one NATS layer: connecting, provisioning the
// streams and buckets of pkg/events, the consume loop with the one ack policy,
// publishing with deterministic ids, KV compare-and-swap updates and stream
// replay. Services' adapters use it so the ack policy cannot drift between
// copies (STYLE.md habit 3).
//
// The ack policy, written down once (Consume):
//
//	handler returns nil            -> DoubleAck
//	handler returns Permanent(err) -> copy to the dead-letter stream, TermWithReason
//	any other error                -> NakWithDelay(backoff(delivered)), or RetryAfter's delay;
//	                                  at MaxDeliver deliveries: dead letter, then Term
package natsx
