package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
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
	// Client sends the requests; default NewClient(concurrency).
	Client *http.Client
	// RequestIDPrefix, when set, gives every measured /generate request the
	// SGLang request id "rid" = prefix + its index, so its measurement can be
	// matched with the server's own timing of it (the fidelity benchmark).
	// Leave it empty against a shared server: SGLang rejects duplicate ids.
	RequestIDPrefix string
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

// NewClient returns an HTTP client suited to n concurrent streams: one kept-
// alive HTTP/1.1 connection per stream, no compression, no overall timeout
// (streams are bounded by the idle timeout and the benchmark's context).
func NewClient(n int) *http.Client {
	n = max(n, 64)
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}}
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
	if conc <= 0 {
		conc = len(measured)
	}
	client := o.Client
	if client == nil {
		client = NewClient(conc)
		defer client.CloseIdleConnections()
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
	b := &bench{client: client, base: strings.TrimRight(o.BaseURL, "/"), idle: idle, abort: cancel}

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
	start := time.Now()
	results := b.runAll(bctx, measured, conc)
	dur := time.Since(start)
	if err := fail(); err != nil {
		if errors.Is(err, ErrStalled) {
			return &Result{Requests: results, Duration: dur}, err
		}
		return nil, err
	}
	res := &Result{Requests: results, Duration: dur}
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
	client *http.Client
	base   string
	idle   time.Duration
	// A stalled stream means a hung server: abort ends the whole run at once
	// instead of letting every other request stall too.
	abort   context.CancelFunc
	stalled atomic.Bool
}

// runAll sends reqs honouring their arrival offsets, at most conc at a time
// (the arrival clock keeps running while requests wait for a slot, as with
// bench_serving's semaphore), and returns their results in order.
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
			out[i] = b.do(ctx, &reqs[i])
		}()
	}
	wg.Wait()
	return out
}

// stream holds the per-request reusable state.
type stream struct {
	buf    []byte
	parser SSEParser
}

var streamPool = sync.Pool{New: func() any { return &stream{buf: make([]byte, 16<<10)} }}

// do sends one request and measures its stream.
func (b *bench) do(ctx context.Context, r *request) RequestResult {
	res := RequestResult{InputTokens: r.inputLen, RID: r.rid}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	idle := time.AfterFunc(b.idle, func() {
		stalled.Store(true)
		b.stalled.Store(true)
		b.abort()
	})
	defer idle.Stop()

	// WroteRequest tells the client's own share of the time to first token
	// apart from the server's (its read, parse and queue before it sees the request).
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { res.Sent = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(rctx, trace), http.MethodPost, b.base+r.path, bytes.NewReader(r.body))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	res.Start = time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		res.Err = requestError(err, &stalled, b.idle)
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		res.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		return res
	}

	st := streamPool.Get().(*stream)
	defer streamPool.Put(st)
	st.parser.Reset()
	res.ITL = make([]time.Duration, 0, max(r.outputLen-1, 0))
	var (
		now       time.Time
		last      time.Time
		gotFirst  bool
		done      bool
		finished  bool
		prevCount int // completion tokens reported so far (native backend)
		generated int // tokens counted from chunks
		reported  = -1
		errMsg    string
	)
	handle := func(data []byte) bool {
		if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
			done = true
			return false
		}
		ci := scanChunk(data)
		if ci.errMsg != "" {
			errMsg = ci.errMsg
			return false
		}
		if ci.promptTokens >= 0 {
			res.InputTokens = ci.promptTokens
		}
		if ci.finished {
			finished = true
		}
		newTokens := 0
		switch {
		case !r.openai && ci.completionTokens >= 0:
			newTokens = ci.completionTokens - prevCount
			prevCount = max(prevCount, ci.completionTokens)
			reported = ci.completionTokens
		case ci.hasText:
			newTokens = 1 // one content chunk, as bench_serving counts OpenAI streams
			if ci.completionTokens >= 0 {
				reported = ci.completionTokens
			}
		case ci.completionTokens >= 0:
			reported = ci.completionTokens // the usage chunk
		}
		if newTokens <= 0 {
			return true
		}
		generated += newTokens
		if !gotFirst {
			gotFirst = true
			res.TTFT = now.Sub(res.Start)
		} else {
			gap := now.Sub(last) / time.Duration(newTokens)
			for range newTokens {
				res.ITL = append(res.ITL, gap)
			}
		}
		last = now
		return true
	}
	var readErr error
	for !done && errMsg == "" {
		n, err := resp.Body.Read(st.buf)
		now = time.Now() // the timestamp of every event in this read
		if n > 0 {
			idle.Reset(b.idle)
			st.parser.Feed(st.buf[:n], handle)
		}
		if err != nil {
			if err == io.EOF {
				st.parser.Flush(handle)
			} else {
				readErr = err
			}
			break
		}
	}
	end := now
	res.E2E = end.Sub(res.Start)
	switch {
	case errMsg != "":
		res.Err = "server error: " + errMsg
	case readErr != nil:
		res.Err = requestError(readErr, &stalled, b.idle)
	case !gotFirst:
		res.Err = "stream ended without generating a token"
	case !done && !finished:
		res.Err = "stream ended before the request finished"
	default:
		res.OK = true
		res.OutputTokens = generated
		if reported >= 0 {
			res.OutputTokens = reported
		}
	}
	if done {
		// Read the end of the chunked body so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	}
	return res
}

func requestError(err error, stalled *atomic.Bool, idle time.Duration) string {
	if stalled.Load() {
		return fmt.Sprintf("stream stalled: no data for %s", idle)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return err.Error()
}
