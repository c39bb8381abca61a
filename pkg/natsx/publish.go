package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
)

// JetStream error codes of a failed expected-last-subject-sequence check:
// 10071 on a single server, 10164 on replicated streams (reference/jetstream.md §1.7).
const (
	errCodeWrongLastSequence         = 10071
	errCodeWrongLastSequenceConstant = 10164
)

// Publish sends ev as JSON to subject with Nats-Msg-Id = ev's id, so a
// republish within the stream's duplicate window is dropped by the server.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, ev events.Event) (*jetstream.PubAck, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Head().Type, err)
	}
	ack, err := js.Publish(ctx, subject, data, jetstream.WithMsgID(ev.Head().ID))
	if err != nil {
		return nil, fmt.Errorf("publish %s to %s: %w", ev.Head().Type, subject, err)
	}
	return ack, nil
}

// PublishOnce is Publish for subjects that may hold one message ever (a
// trial's outcome): the server refuses the message when the subject already
// has one, however late the second publish comes. It then returns
// ErrAlreadyRecorded.
func PublishOnce(ctx context.Context, js jetstream.JetStream, subject string, ev events.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ev.Head().Type, err)
	}
	ack, err := js.Publish(ctx, subject, data, jetstream.WithMsgID(ev.Head().ID), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		if isWrongLastSequence(err) {
			return fmt.Errorf("publish %s to %s: %w", ev.Head().Type, subject, ErrAlreadyRecorded)
		}
		return fmt.Errorf("publish %s to %s: %w", ev.Head().Type, subject, err)
	}
	if ack.Duplicate {
		return fmt.Errorf("publish %s to %s: %w", ev.Head().Type, subject, ErrAlreadyRecorded)
	}
	return nil
}

func isWrongLastSequence(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeWrongLastSequence || apiErr.ErrorCode == errCodeWrongLastSequenceConstant
	}
	return false
}

// LastOnSubject returns the last message stored on subject in stream, if any.
func LastOnSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) ([]byte, bool, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, false, fmt.Errorf("open stream %s: %w", stream, err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read last message on %s: %w", subject, err)
	}
	return msg.Data, true, nil
}
