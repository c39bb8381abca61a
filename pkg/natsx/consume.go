package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
)

// Meta describes one delivered message to a handler, which never sees the
// jetstream.Msg itself (acking is the consume loop's job).
type Meta struct {
	Subject   string
	Stream    string
	Consumer  string
	StreamSeq uint64
	Delivered uint64
	Published time.Time
}

// Handler processes one message. Its error decides the ack (package doc).
type Handler func(ctx context.Context, data []byte, meta Meta) error

// Typed adapts a handler of one event type: it decodes with events.Decode and
// treats a message that does not decode as Permanent.
func Typed[T events.Event](eventType string, fn func(ctx context.Context, ev T, meta Meta) error) Handler {
	return func(ctx context.Context, data []byte, meta Meta) error {
		ev, err := events.Decode[T](data, eventType)
		if err != nil {
			return Permanent(err)
		}
		return fn(ctx, ev, meta)
	}
}

// ConsumeOptions tunes Consume.
type ConsumeOptions struct {
	// Workers is how many handler calls run at once; default 1.
	Workers int
	// MaxDeliver must equal the consumer's MaxDeliver; at that many deliveries a
	// failing message is dead-lettered instead of nak'ed; default 5.
	MaxDeliver int
	// InProgressEvery, when > 0, sends InProgress while a handler runs, so slow
	// handlers do not outlive AckWait.
	InProgressEvery time.Duration
	// Logger receives one line per message that is not acked.
	Logger zerolog.Logger
	// OutcomeOnDeadLetter records a FAILED outcome (class dead-letter) for the trial
	// of every dead-lettered message, so the study never waits for it. For the
	// consumers of candidates and trials; never for the outcomes stream itself.
	OutcomeOnDeadLetter bool
}

// Backoff is the redelivery delay after a transient failure on delivery n.
func Backoff(delivered uint64) time.Duration {
	d := time.Second << min(delivered-1, 5)
	return min(d, 30*time.Second)
}

// Consume pulls messages from cons and hands each to h, acking by the policy in
// the package doc. It returns nil once ctx is done and in-flight handlers have
// finished, or an error when the consumer cannot be read (deleted).
func Consume(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, opts ConsumeOptions, h Handler) error {
	workers := max(opts.Workers, 1)
	maxDeliver := opts.MaxDeliver
	if maxDeliver <= 0 {
		maxDeliver = 5
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(workers), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", consumerName(cons), err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) {
				return fmt.Errorf("consume %s: %w", consumerName(cons), err)
			}
			opts.Logger.Warn().Err(err).Str("consumer", consumerName(cons)).Msg("pull failed; retrying")
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handleOne(ctx, js, msg, opts, maxDeliver, h)
		}()
	}
}

func consumerName(c jetstream.Consumer) string {
	if info := c.CachedInfo(); info != nil {
		return info.Stream + "/" + info.Name
	}
	return "consumer"
}

// MetaOf reads a delivered message's metadata (zero fields when it has none).
func MetaOf(msg jetstream.Msg) Meta {
	m := Meta{Subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		m.Stream = md.Stream
		m.Consumer = md.Consumer
		m.StreamSeq = md.Sequence.Stream
		m.Delivered = md.NumDelivered
		m.Published = md.Timestamp
	}
	return m
}

func handleOne(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, opts ConsumeOptions, maxDeliver int, h Handler) {
	meta := MetaOf(msg)
	log := opts.Logger.With().Str("subject", meta.Subject).Uint64("stream_seq", meta.StreamSeq).Uint64("delivered", meta.Delivered).Logger()
	if study, trial, err := events.ParseTrialFromSubject(meta.Subject); err == nil {
		log = log.With().Str("study", study).Int("trial", trial).Logger()
	}
	if opts.InProgressEvery > 0 {
		hbCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go KeepInProgress(hbCtx, msg, opts.InProgressEvery, nil)
	}
	herr := safeCall(ctx, h, msg.Data(), meta)
	d := Decide(herr, meta, Policy{MaxDeliver: maxDeliver}, ctx.Err() != nil)
	switch d.Action {
	case ActDeadLetter:
		log.Error().Err(herr).Str("reason", d.Reason).Msg("message cannot be processed; dead-lettered and terminated")
	case ActRetry, ActDefer:
		log.Warn().Err(herr).Str("action", d.Action.String()).Dur("retry_in", d.Delay).Msg("handler failed; will retry")
	case ActHandBack:
		log.Debug().Err(herr).Msg("shutting down; handing the message back")
	}
	Settle(ctx, js, msg, meta, d, SettleOptions{OutcomeOnDeadLetter: opts.OutcomeOnDeadLetter, Logger: log})
}

// safeCall turns a handler panic into a Permanent error: a message that
// crashes the handler would crash it again.
func safeCall(ctx context.Context, h Handler, data []byte, meta Meta) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", r))
		}
	}()
	return h(ctx, data, meta)
}

func deadLetterAndRecord(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, meta Meta, reason string, record bool, log zerolog.Logger) {
	if err := DeadLetter(ctx, js, msg.Data(), meta, reason); err != nil {
		log.Error().Err(err).Msg("could not store the dead letter")
	}
	if record {
		if err := RecordDeadLetterOutcome(ctx, js, msg.Data(), meta, reason); err != nil {
			log.Error().Err(err).Msg("could not record the dead-lettered trial's outcome")
		}
	}
}

// DeadLetter copies a message that cannot be processed to SGTUNE_DLQ with the
// reason. Call it before Term: on a work queue a terminated message is gone.
func DeadLetter(ctx context.Context, js jetstream.JetStream, data []byte, meta Meta, reason string) error {
	study, trial, _ := events.ParseTrialFromSubject(meta.Subject)
	dl := events.DeadLetter{
		Envelope:     events.NewEnvelope(events.TypeDeadLetter, study, trial, time.Now()),
		SourceStream: meta.Stream,
		Consumer:     meta.Consumer,
		Subject:      meta.Subject,
		StreamSeq:    meta.StreamSeq,
		Delivered:    meta.Delivered,
		Reason:       reason,
		Data:         data,
	}
	dl.ID = fmt.Sprintf("dlq:%s:%d", meta.Stream, meta.StreamSeq)
	_, err := Publish(ctx, js, events.DeadLetterSubject(meta.Stream), dl)
	return err
}

// RecordDeadLetterOutcome publishes a FAILED result (class dead-letter) for the
// trial a dead-lettered candidate or trial message was about, so the sampler
// gets an outcome for every trial number. A trial that already has an outcome
// keeps it. Messages whose subject names no trial are ignored.
func RecordDeadLetterOutcome(ctx context.Context, js jetstream.JetStream, data []byte, meta Meta, reason string) error {
	study, trial, err := events.ParseTrialFromSubject(meta.Subject)
	if err != nil || events.ValidateStudyName(study) != nil {
		return nil
	}
	var head struct {
		Incarnation string        `json:"incarnation"`
		Params      events.Params `json:"params"`
	}
	_ = json.Unmarshal(data, &head) // best effort: a poison message may not decode
	now := time.Now().UTC()
	res := events.TrialResult{
		Envelope:     events.NewEnvelope(events.TypeTrialResult, study, trial, now).In(head.Incarnation),
		Params:       head.Params,
		State:        events.StateFailed,
		FailureClass: events.FailDeadLetter,
		Reason:       "the trial's message could not be processed and was dead-lettered: " + truncate(reason, 512),
		Backend:      "none",
		StartedAt:    now,
		FinishedAt:   now,
	}
	err = PublishOnce(ctx, js, events.OutcomeSubject(study, trial), res)
	if errors.Is(err, ErrAlreadyRecorded) {
		return nil
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
