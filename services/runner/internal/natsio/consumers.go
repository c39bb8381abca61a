package natsio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/runner/internal/packing"
)

// ConsumerConfig is the shared work-queue consumer of trials needing n GPUs.
// Every runner creates it with the same settings (CreateOrUpdate is idempotent).
func ConsumerConfig(n int, ackWait time.Duration, maxDeliver, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       events.TrialsDurable(n),
		Description:   fmt.Sprintf("runners claim trials needing %d GPU(s)", n),
		FilterSubject: events.TrialsOfClass(n),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: maxAckPending,
	}
}

// EnsureConsumers creates the consumers of every GPU class up to the host's
// GPU count (the streams must exist: natsx.EnsureTopology), or reconciles
// them with ReconcileConsumer when another runner created them first, and
// adopts the smallest AckWait in force for its heartbeats.
func (r *Runner) EnsureConsumers(ctx context.Context) error {
	for _, n := range packing.Classes(r.sched.Total()) {
		want := ConsumerConfig(n, r.cfg.AckWait, r.cfg.MaxDeliver, r.cfg.MaxAckPending)
		// On a cluster still forming its RAFT groups (every runner of a
		// fresh compose stack at once) these calls can time out: retried.
		var cur jetstream.Consumer
		err := natsx.RetryTimeouts(ctx, func(ctx context.Context) (err error) {
			cur, err = r.js.Consumer(ctx, events.StreamTrials, events.TrialsDurable(n))
			return err
		})
		if err == nil {
			have := cur.CachedInfo().Config
			want = ReconcileConsumer(have, want)
			if have.AckWait != r.cfg.AckWait || have.MaxDeliver != r.cfg.MaxDeliver {
				r.log.Warn().Str("consumer", want.Durable).Dur("ack_wait", have.AckWait).Int("max_deliver", have.MaxDeliver).
					Dur("configured_ack_wait", r.cfg.AckWait).Int("configured_max_deliver", r.cfg.MaxDeliver).
					Msg("the fleet's consumer settings differ from this runner's: keeping the fleet's")
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("read consumer %s: %w", events.TrialsDurable(n), err)
		}
		c, err := natsx.EnsureConsumer(ctx, r.js, events.StreamTrials, want)
		if err != nil {
			return err
		}
		r.cons[n] = c
		if aw := c.CachedInfo().Config.AckWait; aw > 0 && aw < r.cfg.AckWait {
			r.cfg.AckWait = aw // heartbeat within the shortest AckWait in force
		}
	}
	return nil
}

// ReconcileConsumer merges this runner's wanted settings of a shared trial
// consumer into the ones in force, so runners started with different
// settings do not flip the consumer back and forth: AckWait and MaxDeliver
// stay as the fleet has them (the first runner's; change them for the whole
// fleet with `nats consumer edit`), and MaxAckPending, the fleet-wide cap on
// trials of the class claimed at once, is only ever raised, never lowered
// below what another runner needs.
func ReconcileConsumer(have, want jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	out := want
	if have.AckWait > 0 {
		out.AckWait = have.AckWait
	}
	if have.MaxDeliver != 0 {
		out.MaxDeliver = have.MaxDeliver
	}
	out.MaxAckPending = max(have.MaxAckPending, want.MaxAckPending)
	return out
}
