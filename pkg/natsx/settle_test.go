package natsx

import (
	"errors"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	p := Policy{MaxDeliver: 5, HandBackDelay: time.Second}
	tests := []struct {
		name          string
		givenErr      error
		givenDelivery uint64
		givenStopping bool
		expected      Action
		expectedDelay time.Duration
	}{
		{name: "success acks", givenErr: nil, givenDelivery: 1, expected: ActAck},
		{name: "success acks even on the last delivery while stopping", givenErr: nil, givenDelivery: 5, givenStopping: true, expected: ActAck},
		{name: "permanent dead-letters on the first delivery", givenErr: Permanent(boom), givenDelivery: 1, expected: ActDeadLetter},
		{name: "transient backs off", givenErr: boom, givenDelivery: 3, expected: ActRetry, expectedDelay: 4 * time.Second},
		{name: "retry-after keeps its delay", givenErr: RetryAfter(boom, 7*time.Second), givenDelivery: 2, expected: ActRetry, expectedDelay: 7 * time.Second},
		{name: "transient on the last delivery dead-letters", givenErr: boom, givenDelivery: 5, expected: ActDeadLetter},
		{name: "retry-after on the last delivery dead-letters", givenErr: RetryAfter(boom, time.Second), givenDelivery: 5, expected: ActDeadLetter},
		{name: "deferred is never dead-lettered", givenErr: Defer(boom, 9*time.Second), givenDelivery: 50, expected: ActDefer, expectedDelay: 9 * time.Second},
		{name: "deferred while stopping stays deferred", givenErr: Defer(boom, 9*time.Second), givenDelivery: 1, givenStopping: true, expected: ActDefer, expectedDelay: 9 * time.Second},
		{name: "stopping hands back whatever the delivery", givenErr: boom, givenDelivery: 5, givenStopping: true, expected: ActHandBack, expectedDelay: time.Second},
		{name: "permanent while stopping still dead-letters", givenErr: Permanent(boom), givenDelivery: 1, givenStopping: true, expected: ActDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Decide(tt.givenErr, Meta{Delivered: tt.givenDelivery}, p, tt.givenStopping)
			if d.Action != tt.expected || d.Delay != tt.expectedDelay {
				t.Fatalf("Decide = %s after %s, want %s after %s", d.Action, d.Delay, tt.expected, tt.expectedDelay)
			}
			if tt.givenErr != nil && d.Reason == "" {
				t.Fatal("a failure's decision carries no reason")
			}
		})
	}
}

func TestDecide_default_max_deliver_is_5(t *testing.T) {
	t.Parallel()
	if d := Decide(errors.New("x"), Meta{Delivered: 5}, Policy{}, false); d.Action != ActDeadLetter {
		t.Fatalf("got %s", d.Action)
	}
	if d := Decide(errors.New("x"), Meta{Delivered: 4}, Policy{}, false); d.Action != ActRetry {
		t.Fatalf("got %s", d.Action)
	}
}
