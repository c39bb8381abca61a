package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Action is what Settle does with a delivered message.
type Action int

const (
	// ActAck: the work is done (or was done before): DoubleAck.
	ActAck Action = iota + 1
	// ActRetry: a transient failure: NakWithDelay(Delay), counted against MaxDeliver.
	ActRetry
	// ActDefer: someone else holds the work (a live lease): NakWithDelay(Delay),
	// never dead-lettered, because the holder settles the message.
	ActDefer
	// ActHandBack: this process stops: NakWithDelay(Delay) (Nak when 0) for
	// another consumer, whatever the delivery count.
	ActHandBack
	// ActDeadLetter: no retry can help: copy to the dead-letter stream (and
	// record a failed outcome when asked), then TermWithReason.
	ActDeadLetter
)

func (a Action) String() string {
	switch a {
	case ActAck:
		return "ack"
	case ActRetry:
		return "retry"
	case ActDefer:
		return "defer"
	case ActHandBack:
		return "hand-back"
	case ActDeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is how one delivered message is settled.
type Decision struct {
	Action Action
	// Delay of a retry, deferral or hand-back.
	Delay time.Duration
	// Reason of a dead letter (the TermWithReason text and the DLQ's reason),
	// or the error behind a retry, for the log.
	Reason string
}

// Policy is what Decide needs besides the handler's verdict.
type Policy struct {
	// MaxDeliver is the consumer's MaxDeliver: a transient failure on that
	// delivery is dead-lettered instead of retried (default 5).
	MaxDeliver int
	// HandBackDelay is the delay of a message handed back at shutdown (0: at once).
	HandBackDelay time.Duration
}

// Decide maps a handler's verdict on delivery meta.Delivered to a Decision:
// the one place where sgtune's ack policy is written (the package doc's
// table). stopping says the consumer is shutting down, so a failed message
// is handed back instead of counted as a failure.
func Decide(err error, meta Meta, p Policy, stopping bool) Decision {
	maxDeliver := p.MaxDeliver
	if maxDeliver <= 0 {
		maxDeliver = 5
	}
	var re *retryError
	var de *deferError
	switch {
	case err == nil:
		return Decision{Action: ActAck}
	case IsPermanent(err):
		return Decision{Action: ActDeadLetter, Reason: err.Error()}
	case errors.As(err, &de):
		return Decision{Action: ActDefer, Delay: de.after, Reason: err.Error()}
	case stopping:
		return Decision{Action: ActHandBack, Delay: p.HandBackDelay, Reason: err.Error()}
	case meta.Delivered >= uint64(maxDeliver):
		return Decision{Action: ActDeadLetter, Reason: fmt.Sprintf("failed %d deliveries, last: %v", meta.Delivered, err)}
	case errors.As(err, &re):
		return Decision{Action: ActRetry, Delay: re.after, Reason: err.Error()}
	}
	return Decision{Action: ActRetry, Delay: Backoff(max(meta.Delivered, 1)), Reason: err.Error()}
}

// SettleOptions tune Settle.
type SettleOptions struct {
	// OutcomeOnDeadLetter records a FAILED outcome (class dead-letter) for the
	// trial of a dead-lettered message (ConsumeOptions.OutcomeOnDeadLetter).
	OutcomeOnDeadLetter bool
	// Logger should carry the message's subject, sequence, study and trial.
	Logger zerolog.Logger
}

// Settle carries out d on msg. Acks outlive a cancelled ctx for up to 10 s
// (the work is done and must be recorded), so pass the consumer's context.
// A failed ack, nak or term is logged: the server then redelivers after
// AckWait and the idempotent handlers see the message again.
func Settle(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, meta Meta, d Decision, opts SettleOptions) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log := opts.Logger
	switch d.Action {
	case ActAck:
		if err := msg.DoubleAck(actx); err != nil {
			log.Warn().Err(err).Msg("ack failed; the message will be redelivered and handled idempotently")
		}
	case ActRetry, ActDefer, ActHandBack:
		var err error
		if d.Delay > 0 {
			err = msg.NakWithDelay(d.Delay)
		} else {
			err = msg.Nak()
		}
		if err != nil {
			log.Warn().Err(err).Str("action", d.Action.String()).Msg("nak failed; AckWait will redeliver")
		}
	case ActDeadLetter:
		deadLetterAndRecord(actx, js, msg, meta, d.Reason, opts.OutcomeOnDeadLetter, log)
		if err := msg.TermWithReason(truncate(d.Reason, 256)); err != nil {
			log.Warn().Err(err).Msg("term failed")
		}
	default:
		log.Error().Int("action", int(d.Action)).Msg("unknown settle action; AckWait will redeliver")
	}
}

// KeepInProgress sends InProgress on msg every interval until ctx is done,
// calling onBeat (if not nil) after each, so work that outlives AckWait is
// not redelivered. Run it in its own goroutine; interval must be below the
// consumer's AckWait (a third of it is the rule).
func KeepInProgress(ctx context.Context, msg jetstream.Msg, every time.Duration, onBeat func(err error)) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := msg.InProgress()
			if onBeat != nil {
				onBeat(err)
			}
		}
	}
}
