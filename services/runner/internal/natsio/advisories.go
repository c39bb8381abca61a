package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// AdvisoryDurable is the durable consumer, shared by every runner, that
// watches JetStream's max-deliveries advisories of the trial consumers (kept
// in natsx.StreamAdvisories). The lead should add it to pkg/events' durable
// registry; it must never be renamed.
const AdvisoryDurable = events.DurableMaxDeliveries

// AdvisoryFilter selects the max-deliveries advisories of the trials stream
// (the last token is the consumer's name).
const AdvisoryFilter = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + events.StreamTrials + ".*"

// maxDeliveriesAdvisory is the part of io.nats.jetstream.advisory.v1.max_deliver we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// WatchMaxDeliveries handles max-deliveries advisories of the trial consumers
// until ctx is done. A trial whose deliveries ran out without any runner
// settling it (its runners died or lost their heartbeats each time) stays in
// the work queue forever and its study would wait for it: the watcher copies
// it to the dead-letter stream, records a FAILED outcome (class dead-letter)
// so the sampler learns of it, and deletes it from the queue. Every step is
// idempotent (dead letters are deduplicated by stream sequence, the outcome
// is published once, a deleted message is not found again), so the shared
// durable may hand an advisory to two runners, or one twice.
//
// The advisories are read from natsx.StreamAdvisories through a shared
// durable, so none is lost while no runner runs. When that stream's subjects
// do not capture them, the watcher says so and falls back to a plain
// subscription (each live runner then handles each advisory; the handling is
// idempotent).
func WatchMaxDeliveries(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	trials, err := js.Stream(ctx, events.StreamTrials)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", events.StreamTrials, err)
	}
	if captured, err := advisoriesCaptured(ctx, js); err != nil || !captured {
		log.Warn().Err(err).Str("stream", natsx.StreamAdvisories).Str("subject", AdvisoryFilter).
			Msg("the advisories stream does not capture max-deliveries advisories; watching them live instead")
		return watchLive(ctx, js, trials, log)
	}
	cons, err := natsx.EnsureConsumer(ctx, js, natsx.StreamAdvisories, jetstream.ConsumerConfig{
		Durable:       AdvisoryDurable,
		Description:   "runners dead-letter trials that exhausted their deliveries",
		FilterSubject: AdvisoryFilter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    10,
	})
	if err != nil {
		return err
	}
	return natsx.Consume(ctx, js, cons, natsx.ConsumeOptions{Workers: 1, MaxDeliver: 10, Logger: log},
		func(ctx context.Context, data []byte, _ natsx.Meta) error {
			return handleMaxDeliveries(ctx, js, trials, data, log)
		})
}

func handleMaxDeliveries(ctx context.Context, js jetstream.JetStream, trials jetstream.Stream, data []byte, log zerolog.Logger) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.StreamSeq == 0 {
		return natsx.Permanent(fmt.Errorf("malformed max-deliveries advisory: %v", err))
	}
	msg, err := trials.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // settled after all (a late ack), or handled already
	}
	if err != nil {
		return fmt.Errorf("get trial message %d: %w", adv.StreamSeq, err)
	}
	meta := natsx.Meta{Subject: msg.Subject, Stream: adv.Stream, Consumer: adv.Consumer, StreamSeq: adv.StreamSeq, Delivered: adv.Deliveries}
	if study, trial, err := events.ParseTrialFromSubject(msg.Subject); err == nil {
		// A live runner may still be running it (its deliveries ran out while
		// it was deferred, e.g. across NATS restarts): wait for its lease.
		if held, err := leaseHeldLive(ctx, js, study, trial); err != nil {
			return err
		} else if held != "" {
			return natsx.Defer(fmt.Errorf("trial %s/%d exhausted its deliveries but %s still runs it", study, trial, held), 10*time.Second)
		}
		// Finished after all (the outcome is stored): only the message is left.
		if _, found, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject(study, trial)); err != nil {
			return err
		} else if found {
			if err := trials.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return fmt.Errorf("delete exhausted trial: %w", err)
			}
			return nil
		}
	}
	reason := fmt.Sprintf("delivered %d times without being settled (the runners that claimed it died or lost their heartbeats)", adv.Deliveries)
	l := log.With().Str("subject", msg.Subject).Uint64("stream_seq", adv.StreamSeq).Uint64("delivered", adv.Deliveries).Logger()
	if err := natsx.DeadLetter(ctx, js, msg.Data, meta, reason); err != nil {
		return fmt.Errorf("dead-letter trial: %w", err)
	}
	if err := natsx.RecordDeadLetterOutcome(ctx, js, msg.Data, meta, reason); err != nil {
		return fmt.Errorf("record dead-lettered trial's outcome: %w", err)
	}
	if err := trials.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete exhausted trial: %w", err)
	}
	l.Error().Msg("trial exhausted its deliveries: dead-lettered, recorded as failed and removed from the queue")
	return nil
}

// advisoriesCaptured reports whether a subject of the advisories stream
// covers AdvisoryFilter.
func advisoriesCaptured(ctx context.Context, js jetstream.JetStream) (bool, error) {
	st, err := js.Stream(ctx, natsx.StreamAdvisories)
	if err != nil {
		return false, err
	}
	for _, subj := range st.CachedInfo().Config.Subjects {
		if subjectCovers(subj, AdvisoryFilter) {
			return true, nil
		}
	}
	return false, nil
}

// subjectCovers reports whether every subject matching filter matches
// pattern (NATS wildcards are whole tokens: "*" one token, ">" the rest).
func subjectCovers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, tok := range p {
		if tok == ">" {
			return i < len(f)
		}
		if i >= len(f) {
			return false
		}
		switch {
		case tok == "*" && f[i] != ">":
		case tok == f[i] && tok != "*" && tok != ">":
		default:
			return false
		}
	}
	return len(p) == len(f)
}

// watchLive handles advisories from a core subscription until ctx is done.
func watchLive(ctx context.Context, js jetstream.JetStream, trials jetstream.Stream, log zerolog.Logger) error {
	ch := make(chan *nats.Msg, 64)
	sub, err := js.Conn().ChanSubscribe(AdvisoryFilter, ch)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", AdvisoryFilter, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			if err := handleMaxDeliveries(hctx, js, trials, m.Data, log); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Msg("could not dead-letter an exhausted trial")
			}
			cancel()
		}
	}
}

// leaseHeldLive names the live holder of a trial's lease ("" when none).
func leaseHeldLive(ctx context.Context, js jetstream.JetStream, study string, trial int) (string, error) {
	leases, err := natsx.OpenLeases(ctx, js)
	if err != nil {
		return "", err
	}
	l, _, err := leases.Get(ctx, events.TrialLeaseKey(study, trial))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	live, err := natsx.HolderLive(ctx, js, l)
	if err != nil || !live {
		return "", err
	}
	return l.Kind + " " + l.Holder, nil
}
