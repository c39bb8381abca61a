package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Tail delivers every stored message of stream matching filter, oldest first,
// then every new one, until ctx is done (it then returns nil) or onMsg returns
// an error. onCaughtUp, if not nil, is called once when every message stored
// when Tail started has been delivered (at once when there were none). It uses
// an ordered consumer: no durable state, so replay is how state is rebuilt.
func Tail(ctx context.Context, js jetstream.JetStream, stream, filter string, onMsg func(data []byte, meta Meta) error, onCaughtUp func()) error {
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
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("replay %s (%s): %w", stream, filter, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("replay %s (%s): %w", stream, filter, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			continue // ordered consumers recreate themselves; transient errors end up here
		}
		meta := MetaOf(msg)
		if err := onMsg(msg.Data(), meta); err != nil {
			return err
		}
		if !caught && meta.StreamSeq >= target {
			signal()
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
