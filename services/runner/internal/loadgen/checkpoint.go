package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Checkpoint is a snapshot of a level's measured phase while it runs
// (Options.OnCheckpoint): what early stopping judges a trial by before it
// finishes.
type Checkpoint struct {
	// Done are the measured requests finished so far, in completion order.
	Done []RequestResult
	// Total is the number of measured requests of the level.
	Total int
	// Elapsed is the time since the measured phase started.
	Elapsed time.Duration
	// StreamedTokens counts the output tokens streamed since the measured
	// phase started, those of requests still in flight included.
	StreamedTokens int64
	// Metrics aggregate Done over Elapsed (see Aggregate), except
	// output_throughput, which is StreamedTokens over Elapsed: finished
	// requests alone would miss the tokens of the streams in flight.
	Metrics map[string]float64
}

// checkpointer calls Options.OnCheckpoint as a level's measured requests
// finish, once per fraction in Options.Checkpoints, from one goroutine of
// its own so the streams are never held up by the aggregation.
type checkpointer struct {
	b      *bench
	slo    SLO
	total  int
	start  time.Time
	base   int64
	marks  []int // completion counts that trigger a checkpoint, increasing
	mu     sync.Mutex
	done   []RequestResult
	next   int // index into marks
	ch     chan Checkpoint
	closed chan struct{}
}

// newCheckpointer starts the checkpoints of a measured phase of total
// requests; nil when none are asked for.
func newCheckpointer(b *bench, o Options, total int, slo SLO) *checkpointer {
	if o.OnCheckpoint == nil || len(o.Checkpoints) == 0 || total == 0 {
		return nil
	}
	cp := &checkpointer{b: b, slo: slo, total: total, start: time.Now(), base: b.streamed.Load(),
		ch: make(chan Checkpoint, 1), closed: make(chan struct{})}
	for _, f := range o.Checkpoints {
		n := int(f * float64(total))
		if f > 0 && f < 1 && n >= 1 && (len(cp.marks) == 0 || n > cp.marks[len(cp.marks)-1]) {
			cp.marks = append(cp.marks, n)
		}
	}
	go func() {
		defer close(cp.closed)
		for c := range cp.ch {
			m, _ := Aggregate(c.Done, c.Elapsed, cp.slo)
			if s := c.Elapsed.Seconds(); s > 0 {
				m["output_throughput"] = float64(c.StreamedTokens) / s
			}
			c.Metrics = m
			o.OnCheckpoint(c)
		}
	}()
	return cp
}

// finished records one finished measured request.
func (cp *checkpointer) finished(r RequestResult) {
	if cp == nil {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.done = append(cp.done, r)
	if cp.next >= len(cp.marks) || len(cp.done) < cp.marks[cp.next] {
		return
	}
	cp.next++
	c := Checkpoint{Done: slices.Clone(cp.done), Total: cp.total, Elapsed: time.Since(cp.start), StreamedTokens: cp.b.streamed.Load() - cp.base}
	select {
	case cp.ch <- c:
	default: // the previous one is still being aggregated: skip this one
	}
}

// stop ends the checkpoints; no OnCheckpoint call follows its return.
func (cp *checkpointer) stop() {
	if cp == nil {
		return
	}
	cp.mu.Lock()
	cp.next = len(cp.marks)
	cp.mu.Unlock()
	close(cp.ch)
	<-cp.closed
}
