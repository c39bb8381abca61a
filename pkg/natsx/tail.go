package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TailOption configures Tail.
type TailOption func(*tailConfig)

type tailConfig struct {
	log       zerolog.Logger
	onRestart func(TailRestart)
}

// TailRestart is one time a tail had to follow its stream again: its ordered
// consumer went quiet while the stream moved on (Reason starts "stalled"), or
// its iterator ended on its own (a server or cluster node lost).
type TailRestart struct {
	Stream, Filter string
	From           uint64 // the stream sequence it follows again from
	Reason         string
}

// TailLogger logs every restart of the tail at warn level (default: none).
func TailLogger(l zerolog.Logger) TailOption { return func(c *tailConfig) { c.log = l } }

// OnTailRestart calls f on every restart of the tail (a metric's counter),
// on Tail's goroutine.
func OnTailRestart(f func(TailRestart)) TailOption {
	return func(c *tailConfig) { c.onRestart = f }
}

// Tail delivers every stored message of stream matching filter, oldest first,
// then every new one, until ctx is done (it then returns nil) or onMsg returns
// an error. onCaughtUp, if not nil, is called once when every message stored
// when Tail started has been delivered (at once when there were none). It uses
// an ordered consumer: no durable state, so replay is how state is rebuilt.
// A consumer that goes quiet or ends is followed again from the next
// sequence; opts say who hears of it (TailLogger, OnTailRestart).
func Tail(ctx context.Context, js jetstream.JetStream, stream, filter string, onMsg func(data []byte, meta Meta) error, onCaughtUp func(), opts ...TailOption) error {
	cfg := tailConfig{log: zerolog.Nop()}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", stream, err)
	}
	// The last sequence stored now matching the filter tells when we are caught up.
	var target uint64
	if last, err := s.GetLastMsgForSubject(ctx, filter); err == nil {
		target = last.Sequence
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("read the end of %s (%s): %w", stream, filter, err)
	}
	caught := false
	signal := func() {
		if !caught {
			caught = true
			if onCaughtUp != nil {
				onCaughtUp()
			}
		}
	}
	if target == 0 {
		signal()
		if ctx.Err() != nil {
			return nil
		}
	}
	// next is the stream sequence to resume from when the ordered consumer
	// has to be made again (0: from the start).
	var next uint64
	deliver := func(msg jetstream.Msg) error {
		meta := MetaOf(msg)
		if err := onMsg(msg.Data(), meta); err != nil {
			return &handlerError{err}
		}
		next = meta.StreamSeq + 1
		if !caught && meta.StreamSeq >= target {
			signal()
		}
		return nil
	}
	err = follow(ctx, s, filter, next, deliver)
	var herr *handlerError
	if errors.As(err, &herr) {
		return herr.err
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, errFollowEnded) {
		return fmt.Errorf("replay %s (%s): %w", stream, filter, err)
	}
	// The iterator ended although nobody stopped it (its consumer gone with
	// a server or a cluster node, a reset that gave up, the watchdog): a
	// tail that returned here would leave its reader waiting forever, so it
	// follows again from the next sequence, with a backoff while the stream
	// is away.
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		cfg.restarted(TailRestart{Stream: stream, Filter: filter, From: next, Reason: restartReason(err)})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		err = follow(ctx, s, filter, next, deliver)
		if errors.As(err, &herr) {
			return herr.err
		}
		if err == nil {
			backoff = 100 * time.Millisecond
		}
	}
	return nil
}

func (c *tailConfig) restarted(r TailRestart) {
	c.log.Warn().Str("stream", r.Stream).Str("filter", r.Filter).Uint64("from_seq", r.From).Str("reason", r.Reason).
		Msg("following the stream again: its ordered consumer stopped delivering")
	if c.onRestart != nil {
		c.onRestart(r)
	}
}

// restartReason is why follow returned before its context ended.
func restartReason(err error) string {
	if err == nil {
		return "the ordered consumer ended"
	}
	return err.Error()
}

// handlerError carries onMsg's error out of follow.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// errFollowEnded: follow's iterator ended before its context did.
var errFollowEnded = errors.New("the ordered consumer's iterator ended")

// stallError: the watchdog ended follow's iterator, for this reason (it is
// an errFollowEnded).
type stallError string

func (e stallError) Error() string        { return string(e) }
func (e stallError) Is(target error) bool { return target == errFollowEnded }

// follow delivers the messages of filter from stream sequence from (0: all)
// through one ordered consumer until ctx is done (nil), deliver fails (its
// error), or the iterator ends on its own (errFollowEnded, or the error
// that made creating the consumer fail).
//
// The ordered consumer mends what it notices (missed heartbeats, a gap in
// its sequence, a deleted consumer), but a consumer can also go quiet while
// its heartbeats keep coming: after the node leading a replicated stream was
// lost, a sampler's outcome feed delivered nothing more while runners kept
// recording outcomes. So a watchdog compares what was delivered with what the
// stream holds, and ends the iterator when the stream has moved on without
// it; Tail then follows again from the next sequence.
func follow(ctx context.Context, s jetstream.Stream, filter string, from uint64, deliver func(jetstream.Msg) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	progress := newTailProgress(from)
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	stalled := make(chan string, 1) // the watchdog's reason, sent before it stops the iterator
	go watchStall(wctx, progress, func(ctx context.Context) (uint64, error) {
		last, err := s.GetLastMsgForSubject(ctx, filter)
		if err != nil {
			return 0, err
		}
		return last.Sequence, nil
	}, func(reason string) { stalled <- reason; it.Stop() })
	failures := 0
	for {
		msg, err := it.Next()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			select {
			case reason := <-stalled:
				return stallError(reason)
			default:
				return errFollowEnded
			}
		case err != nil:
			// Ordered consumers recreate themselves; what surfaces here is
			// transient, unless it keeps coming.
			if failures++; failures >= 10 {
				return fmt.Errorf("%w: %w", errFollowEnded, err)
			}
			continue
		}
		failures = 0
		seq := MetaOf(msg).StreamSeq
		progress.handling()
		err = deliver(msg)
		progress.delivered(seq)
		if err != nil {
			return err
		}
	}
}

// Replay delivers every stored message of stream matching filter and returns
// once it has delivered them all (it does not follow new messages).
func Replay(ctx context.Context, js jetstream.JetStream, stream, filter string, onMsg func(data []byte, meta Meta) error) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := false
	err := Tail(rctx, js, stream, filter, onMsg, func() { done = true; cancel() })
	if err != nil {
		return err
	}
	if !done {
		return ctx.Err()
	}
	return nil
}
