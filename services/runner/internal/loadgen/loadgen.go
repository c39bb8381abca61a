package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
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
	// TLS configures https connections (default: the system's roots).
	TLS *tls.Config
	// NoPreopen leaves each stream to open its connection on its first
	// measured request, as bench_serving does; only for the fidelity
	// benchmark's side-by-side comparison.
	NoPreopen bool
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

// Run prepares every request, runs the warm-up, then the measured phase, and
// aggregates. It returns ErrTimeout (wrapped) when Timeout passes, ErrAllFailed
// when no measured request completed (the Result is returned too, for its
// errors), ErrBadWorkload for an unusable workload, and ctx's error when ctx
// is cancelled.
func Run(ctx context.Context, o Options) (*Result, error) {
	w := o.Workload
	if w.NumPrompts <= 0 {
		return nil, fmt.Errorf("%w: num_prompts must be > 0", ErrBadWorkload)
	}
	prompts := o.Prompts
	if w.Dataset == DatasetPrompts && len(prompts) == 0 {
		var err error
		if prompts, err = ReadPrompts(w.PromptFile); err != nil {
			return nil, err
		}
	}
	model := o.Model
	if model == "" {
		model = "default"
	}
	seed := uint64(w.Seed)
	measured, err := buildRequests(w, model, prompts, w.NumPrompts, seed, false)
	if err != nil {
		return nil, err
	}
	if o.RequestIDPrefix != "" {
		setRequestIDs(measured, o.RequestIDPrefix)
	}
	warm, err := buildRequests(w, model, prompts, max(w.WarmupRequests, 0), seed+1, true)
	if err != nil {
		return nil, err
	}
	conc := w.MaxConcurrency
	if conc <= 0 || conc > len(measured) {
		conc = len(measured)
	}
	ep, err := newEndpoint(o.BaseURL, o.APIKey, o.TLS)
	if err != nil {
		return nil, err
	}
	for _, reqs := range [][]request{measured, warm} {
		for i := range reqs {
			reqs[i].wire = ep.wire(http.MethodPost, reqs[i].path, reqs[i].body)
		}
	}
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if o.Timeout > 0 {
		t := time.AfterFunc(o.Timeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}
	b := &bench{ep: ep, idle: idle, abort: cancel, probe: probePath(w.Backend == BackendOpenAI)}
	defer b.pool.closeAll()

	fail := func() error {
		switch {
		case timedOut.Load():
			return fmt.Errorf("%w after %s", ErrTimeout, o.Timeout)
		case ctx.Err() != nil:
			return ctx.Err()
		case b.stalled.Load():
			return fmt.Errorf("%w: a stream sent nothing for %s", ErrStalled, idle)
		}
		return nil
	}
	if len(warm) > 0 {
		b.runAll(bctx, warm, min(conc, len(warm)))
		if err := fail(); err != nil {
			return nil, err
		}
	}
	// Every stream's connection is open before the clock starts.
	preopened := 0
	if !o.NoPreopen {
		if preopened, err = b.preopen(bctx, min(conc, MaxPreopen)); err != nil {
			if ferr := fail(); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("%w: %v", ErrAllFailed, err)
		}
	}
	start := time.Now()
	results := b.runAll(bctx, measured, conc)
	dur := time.Since(start)
	if err := fail(); err != nil {
		if errors.Is(err, ErrStalled) {
			return &Result{Requests: results, Duration: dur}, err
		}
		return nil, err
	}
	res := &Result{Requests: results, Duration: dur, Preopened: preopened}
	for i := range results {
		if results[i].NewConn {
			res.Dialed++
		}
	}
	res.Metrics, res.Units = Aggregate(results, dur, SLO{
		TTFT: msDur(w.SLOTTFTMs), TPOT: msDur(w.SLOTPOTMs), E2E: msDur(w.SLOE2EMs),
	})
	if res.Metrics["completed"] == 0 {
		return res, fmt.Errorf("%w (%d requests; first error: %s)", ErrAllFailed, len(results), res.FirstError())
	}
	return res, nil
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
}

// runAll sends reqs honouring their arrival offsets, at most conc at a time
// (the arrival clock keeps running while requests wait for a slot, as with
// bench_serving's semaphore), and returns their results in order. Each
// request takes an idle connection from the pool (or opens one) and gives
// it back as soon as its response has ended.
func (b *bench) runAll(ctx context.Context, reqs []request, conc int) []RequestResult {
	out := make([]RequestResult, len(reqs))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var c *conn
			out[i], c = b.do(ctx, b.pool.get(), &reqs[i])
			if c != nil {
				b.pool.put(c)
			}
		}()
	}
	wg.Wait()
	return out
}
