package natsx

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// How a tail notices that its consumer went quiet: every tailStallCheck, when
// nothing arrived for tailStallAfter and no message is being handled, it
// asks the stream for its last sequence on the filter. Package variables so
// that a test can shorten them.
var (
	tailStallCheck = 2 * time.Second
	tailStallAfter = 5 * time.Second
)

// tailProgress is what one follow has delivered, shared with its watchdog.
type tailProgress struct {
	mu    sync.Mutex
	seq   uint64    // stream sequence of the last message delivered (from-1 at first)
	at    time.Time // when the last message arrived (or the follow began)
	inFor bool      // a message is in the handler: a slow reader is not a stall
}

func newTailProgress(from uint64) *tailProgress {
	p := &tailProgress{at: time.Now()}
	if from > 0 {
		p.seq = from - 1
	}
	return p
}

func (p *tailProgress) handling() {
	p.mu.Lock()
	p.inFor, p.at = true, time.Now()
	p.mu.Unlock()
}

func (p *tailProgress) delivered(seq uint64) {
	p.mu.Lock()
	p.inFor, p.at = false, time.Now()
	p.seq = max(p.seq, seq)
	p.mu.Unlock()
}

// idle reports the last sequence delivered when nothing has arrived for
// longer than after and no message is being handled.
func (p *tailProgress) idle(now time.Time, after time.Duration) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq, !p.inFor && now.Sub(p.at) >= after
}

// watchStall calls stop, once, with the reason, when the tail has been idle
// while the stream holds a later message matching its filter (lastStored:
// its sequence), and returns; it returns when ctx is done. A failed read of
// the stream (a node lost, a leader being elected) is no evidence and is
// tried again later.
func watchStall(ctx context.Context, p *tailProgress, lastStored func(context.Context) (uint64, error), stop func(reason string)) {
	tick := time.NewTicker(tailStallCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			seq, idle := p.idle(now, tailStallAfter)
			if !idle {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			last, err := lastStored(rctx)
			cancel()
			if err != nil || last <= seq {
				continue
			}
			// Read again: the message may have arrived while we asked.
			if seq, idle = p.idle(time.Now(), tailStallAfter); idle && last > seq {
				stop(fmt.Sprintf("stalled: nothing delivered for %s while the stream holds sequence %d, beyond the %d delivered", tailStallAfter, last, seq))
				return
			}
		}
	}
}
