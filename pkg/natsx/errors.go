package natsx

import (
	"errors"
	"time"
)

// ErrAlreadyRecorded is returned by PublishOnce when the subject already holds a message:
// the event was recorded before (a redelivered trial, a restarted producer).
var ErrAlreadyRecorded = errors.New("already recorded")

// ErrNoChange is returned by an UpdateJSON closure to skip the write.
var ErrNoChange = errors.New("no change")

// permanentError marks a handler error that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a verdict that redelivery cannot change (malformed or
// forever invalid input): the message is dead-lettered and terminated.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryError is a transient handler error with an explicit delay.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter marks err as transient and asks for redelivery after d.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: d}
}

// deferError says the work belongs to someone else for now.
type deferError struct {
	err   error
	after time.Duration
}

func (e *deferError) Error() string { return e.err.Error() }
func (e *deferError) Unwrap() error { return e.err }

// Defer marks err as "another live process holds this work" (a trial
// leased by a running runner): the message is nak'ed with delay d and never
// dead-lettered however often it was delivered, because its holder settles
// it (a late ack is honoured) or, if the holder dies, its lease expires and
// a later delivery runs it.
func Defer(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &deferError{err: err, after: d}
}

// ErrUnreachable is returned by ConnectClient when no NATS server answered in time.
var ErrUnreachable = errors.New("NATS unreachable")

// ErrAuth is returned by ConnectClient (and by Connect, at once rather than
// after its wait) when the server refuses the client's credentials.
var ErrAuth = errors.New("NATS refused the credentials")
