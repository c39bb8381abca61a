package natsx

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The watchdog ends a follow only when it is idle while the stream holds a
// later message: not while the stream holds nothing newer, nor on a failed
// read of the stream (each case watched for three reads of the stream).
func TestWatchStallStopsOnlyAQuietTailBehindItsStream(t *testing.T) {
	defer SetTailStall(time.Millisecond, time.Millisecond)()
	for _, tc := range []struct {
		name    string
		last    uint64
		readErr error
		want    bool
	}{
		{"idle, the stream moved on", 9, nil, true},
		{"idle, nothing newer", 7, nil, false},
		{"the stream cannot be read", 9, context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTailProgress(1)
			p.delivered(7)
			var stopped atomic.Bool
			var reads atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				watchStall(ctx, p, func(context.Context) (uint64, error) {
					reads.Add(1)
					return tc.last, tc.readErr
				}, func(string) { stopped.Store(true) })
			}()
			for !stopped.Load() && reads.Load() < 3 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			if stopped.Load() != tc.want {
				t.Errorf("stopped = %v after %d reads, want %v", stopped.Load(), reads.Load(), tc.want)
			}
		})
	}
}

// A message in the handler is not a stall however long it takes (a slow
// reader), and a message delivered makes the tail busy again.
func TestTailProgressIsNotIdleWhileHandling(t *testing.T) {
	p := newTailProgress(5)
	later := time.Now().Add(time.Hour)
	if seq, idle := p.idle(later, time.Second); !idle || seq != 4 {
		t.Fatalf("a fresh follow from 5: idle %v at %d, want idle at 4", idle, seq)
	}
	p.handling()
	if _, idle := p.idle(later, time.Second); idle {
		t.Fatal("idle while a message is in the handler")
	}
	p.delivered(5)
	if seq, idle := p.idle(time.Now(), time.Second); idle || seq != 5 {
		t.Fatalf("just delivered 5: idle %v at %d, want busy at 5", idle, seq)
	}
}
