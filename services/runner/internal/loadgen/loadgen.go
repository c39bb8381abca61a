package loadgen

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// DefaultIdleTimeout is how long a stream may go without a byte before the
// request counts as failed (stalled).
const DefaultIdleTimeout = 2 * time.Minute

// Options configure one benchmark run.
type Options struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:30000".
	BaseURL string
	// Workload is what to send (events.Workload, as in the study spec).
	Workload events.Workload
	// Model is the "model" field of /v1/completions requests (default "default").
	Model string
	// Prompts override Workload.PromptFile for the prompts dataset.
	Prompts []string
	// Timeout bounds warm-up plus the measured phase; 0 means no bound.
	Timeout time.Duration
	// IdleTimeout fails a request whose stream sends nothing for this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// RequestIDPrefix, when set, gives every measured /generate request the
	// SGLang request id "rid" = prefix + its index, so its measurement can be
	// matched with the server's own timing of it (the fidelity benchmark).
	// Leave it empty against a shared server: SGLang rejects duplicate ids.
	RequestIDPrefix string
	// APIKey, when set, is sent as "Authorization: Bearer <key>" with every
	// request (the server's --api-key).
	APIKey string
	// OnLevel, when set, receives each level of a ladder or a capacity
	// search as soon as it is measured (the trial's progress). It must not
	// block for long.
	OnLevel func(events.LoadPoint)
	// TLS configures https connections (default: the system's roots).
	TLS *tls.Config
	// Checkpoints are fractions of a level's measured requests (in (0, 1),
	// increasing) at whose completion OnCheckpoint is called with what was
	// measured so far (early stopping); nil: none.
	Checkpoints  []float64
	OnCheckpoint func(Checkpoint)
	// NoPreopen leaves each stream to open its connection on its first
	// measured request, as bench_serving does; only for the fidelity
	// benchmark's side-by-side comparison.
	NoPreopen bool
	// Burst sends a closed loop's first wave all at once instead of one
	// stream after another as the server takes each (firstWaveTake); only
	// for the fidelity benchmark's side-by-side comparison.
	Burst bool
	// firstWaveTake overrides the package's firstWaveTake (tests).
	firstWaveTake time.Duration
}

// Result is a finished benchmark.
type Result struct {
	// Requests are the measured requests, in the order they were prepared.
	Requests []RequestResult
	// Duration is the measured phase's wall time, to the last request's end.
	Duration time.Duration
	// Metrics and Units are the aggregates (see Aggregate).
	Metrics map[string]float64
	Units   map[string]string
	// Preopened counts the connections opened before the clock started;
	// Dialed the measured requests that still had to open one.
	Preopened, Dialed int
}

// FirstError returns the error of the first failed request, for a reason
// text, preferring a real failure to the cancellations an aborted run leaves.
func (r *Result) FirstError() string {
	first := ""
	for i := range r.Requests {
		if e := r.Requests[i].Err; !r.Requests[i].OK {
			if e != "cancelled" && !strings.HasPrefix(e, "not sent: ") {
				return e
			}
			if first == "" {
				first = e
			}
		}
	}
	return first
}

// Run prepares every request, runs the warm-up, opens every stream's
// connection, then runs the measured phase and aggregates: one load level,
// the workload's MaxConcurrency or RequestRate (Measure runs a workload's
// ladder or capacity search). It returns ErrTimeout (wrapped) when Timeout
// passes, ErrAllFailed when no measured request completed (the Result is
// returned too, for its errors), ErrStalled when a stream stalled (with the
// Result), ErrBadWorkload for an unusable workload, and ctx's error when
// ctx is cancelled.
func Run(ctx context.Context, o Options) (*Result, error) {
	s, err := newSession(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.level(o.Workload, 0, 0)
}

func msDur(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

type bench struct {
	ep    *endpoint
	pool  connPool
	probe string // the GET path preopen uses
	idle  time.Duration
	// A stalled stream means a hung server: abort ends the whole run at once
	// instead of letting every other request stall too.
	abort   context.CancelFunc
	stalled atomic.Bool
	// streamed counts the output tokens streamed so far (Checkpoint).
	streamed atomic.Int64
	// cp, while a measured phase runs, is told each finished request.
	cp *checkpointer
	// burst: Options.Burst; take: how long the first wave waits for the
	// server to take a request (firstWaveTake).
	burst bool
	take  time.Duration
}

// firstWaveTake bounds how long a closed loop's first wave waits for the
// server to take one request (its response headers) before sending the
// next stream's anyway: a server that sends its headers only with the first
// token still gets its first wave within a millisecond a stream.
const firstWaveTake = time.Millisecond

// runAll sends reqs honouring their arrival offsets, at most conc at a time
// (the arrival clock keeps running while requests wait for a slot, as with
// bench_serving's semaphore), and returns their results in order. Each
// request takes an idle connection from the pool (or opens one) and gives
// it back as soon as its response has ended.
//
// A closed loop's first wave (conc requests due at once) is not sent in one
// burst: each stream's first request goes when the server has taken the one
// before it (its response headers came back), or after firstWaveTake. A
// burst of hundreds of requests in the same microsecond queues in the
// server's HTTP layer, before the server's own clock starts (SGLang counts
// TTFT from its handler): measured against a server timing itself, that
// queue was nearly all of the client's TTFT error (+17 ms on the first wave
// against +0.4 ms after it, at 512 streams). The wave still starts within
// tens of milliseconds, far inside its requests' lifetime, so the load the
// server sees is the same; each request's clock starts when it is sent.
func (b *bench) runAll(ctx context.Context, reqs []request, conc int) []RequestResult {
	out := make([]RequestResult, len(reqs))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var prevTaken chan struct{} // closed when the server took the previous first-wave request
	start := time.Now()
	for i := range reqs {
		if d := reqs[i].arrival - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if prevTaken != nil {
			t := time.NewTimer(b.take)
			select {
			case <-prevTaken:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			prevTaken = nil
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < len(reqs); j++ {
				out[j] = RequestResult{Err: "not sent: " + ctx.Err().Error()}
			}
			break
		}
		var taken chan struct{}
		if !b.burst && i+1 < min(conc, len(reqs)) && reqs[i+1].arrival == 0 {
			taken = make(chan struct{})
			prevTaken = taken
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var c *conn
			out[i], c = b.do(ctx, b.pool.get(), &reqs[i], taken)
			if c != nil {
				b.pool.put(c)
			}
			b.cp.finished(out[i])
		}()
	}
	wg.Wait()
	return out
}
