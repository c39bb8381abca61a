package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stream holds the per-request reusable state.
type stream struct {
	buf    []byte
	parser SSEParser
}

var streamPool = sync.Pool{New: func() any { return &stream{buf: make([]byte, 16<<10)} }}

// tokenCounter follows one response's chunks the way bench_serving does: a
// chunk counts only when it carries non-empty text (an empty first chunk is
// not a first token); a native chunk's new tokens are the growth of
// meta_info.completion_tokens since the last counted chunk (0: skipped), an
// OpenAI chunk with text is one token.
type tokenCounter struct {
	openai    bool
	gotFirst  bool
	prevCount int // completion tokens at the last counted chunk (native)
	generated int // tokens counted from chunks
	reported  int // the server's own count of completion tokens; -1 if none
}

// count returns how many new tokens chunk ci brings (0: not a token chunk).
func (c *tokenCounter) count(ci chunkInfo) int {
	if ci.completionTokens >= 0 {
		c.reported = ci.completionTokens
	}
	if !ci.hasText {
		return 0
	}
	n := 1
	if !c.openai && ci.completionTokens >= 0 {
		n = ci.completionTokens - c.prevCount
		if !c.gotFirst {
			n = max(n, 1) // the first counted chunk is the first token, whatever its count
		}
		if n <= 0 {
			return 0
		}
		c.prevCount = ci.completionTokens
	}
	c.generated += n
	return n
}

// do sends one request on c (nil: open a connection, on the clock) and
// measures its stream; taken, when not nil, is closed once the server has
// answered with its headers (or the request failed before). It returns the
// connection when it can carry the stream's next request, nil when it was
// closed.
func (b *bench) do(ctx context.Context, c *conn, r *request, taken chan struct{}) (res RequestResult, keep *conn) {
	res = RequestResult{InputTokens: r.inputLen, RID: r.rid}
	signalTaken := func() {
		if taken != nil {
			close(taken)
			taken = nil
		}
	}
	defer signalTaken()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	idle := time.AfterFunc(b.idle, func() {
		stalled.Store(true)
		b.stalled.Store(true)
		b.abort()
	})
	defer idle.Stop()
	fail := func(err error) { res.Err = requestError(rctx, err, &stalled, b.idle) }

	res.Start = time.Now()
	var err error
	if c == nil {
		res.NewConn = true
		if c, err = b.ep.dial(rctx); err != nil {
			fail(err)
			return res, nil
		}
	}
	res.GotConn = time.Now()
	// Cancelling the run (a stall, the timeout, a dead server) unblocks the
	// connection's reads; the connection is then closed, not reused.
	stop := context.AfterFunc(rctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	reusable := false
	defer func() {
		keep = c
		if c == nil { // the retry could not open a connection
			return
		}
		if !stop() || !reusable {
			c.close()
			keep = nil
		}
	}()
	resp, err := c.send(rctx, r.wire, http.MethodPost, &res.Sent)
	if errors.Is(err, errStale) {
		// The server had closed this kept-alive connection while it was idle:
		// nothing was processed, so send again on a new one.
		stop()
		c.close()
		res.NewConn = true
		if c, err = b.ep.dial(rctx); err != nil {
			fail(err)
			return res, nil
		}
		stop = context.AfterFunc(rctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
		resp, err = c.send(rctx, r.wire, http.MethodPost, &res.Sent)
	}
	signalTaken()
	if err != nil {
		fail(err)
		return res, nil
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		res.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		reusable = drained(c, resp)
		return res, nil
	}

	sr := streamReader{b: b, res: &res, tc: tokenCounter{openai: r.openai, reported: -1}}
	res.ITL = make([]time.Duration, 0, max(r.outputLen-1, 0))
	eof, readErr := sr.read(resp, idle)
	res.E2E = sr.now.Sub(res.Start)
	switch {
	case sr.errMsg != "":
		res.Err = "server error: " + sr.errMsg
	case readErr != nil:
		fail(readErr)
	case !sr.tc.gotFirst:
		res.Err = "stream ended without generating a token"
	case !sr.done && !sr.finished:
		res.Err = "stream ended before the request finished"
	default:
		res.OK = true
		res.OutputTokens = sr.tc.generated
		if sr.tc.reported >= 0 {
			res.OutputTokens = sr.tc.reported
		}
	}
	// The connection carries the stream's next request only when this
	// response was read to its end (after [DONE], what is left is the
	// chunked body's terminator).
	switch {
	case eof:
		reusable = !resp.Close
	case sr.done:
		reusable = drained(c, resp)
	}
	return res, nil
}

// streamReader follows one response's event stream into its RequestResult.
type streamReader struct {
	b         *bench
	res       *RequestResult
	tc        tokenCounter
	now, last time.Time // the current read's time; the last token chunk's
	done      bool      // [DONE] seen
	finished  bool      // a finish_reason seen
	errMsg    string    // an error chunk's message
}

// read reads the stream until [DONE], an error chunk or its end, with one
// timestamp per read; idle is reset by every byte. eof is true when the
// body was read to its end.
func (sr *streamReader) read(resp *http.Response, idle *time.Timer) (eof bool, err error) {
	st := streamPool.Get().(*stream)
	defer streamPool.Put(st)
	st.parser.Reset()
	for !sr.done && sr.errMsg == "" {
		n, rerr := resp.Body.Read(st.buf)
		sr.now = time.Now() // the timestamp of every event in this read
		if n > 0 {
			idle.Reset(sr.b.idle)
			st.parser.Feed(st.buf[:n], sr.handle)
		}
		if rerr != nil {
			if rerr == io.EOF {
				st.parser.Flush(sr.handle)
				return true, nil
			}
			return false, rerr
		}
	}
	return false, nil
}

// handle takes one event's data; false stops the stream.
func (sr *streamReader) handle(data []byte) bool {
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		sr.done = true
		return false
	}
	ci := scanChunk(data)
	if ci.errMsg != "" {
		sr.errMsg = ci.errMsg
		return false
	}
	res := sr.res
	if ci.promptTokens >= 0 {
		res.InputTokens = ci.promptTokens
	}
	if ci.cachedTokens >= 0 {
		res.CachedTokens, res.CacheReported = ci.cachedTokens, true
	}
	if ci.finished {
		sr.finished = true
	}
	n := sr.tc.count(ci)
	if n <= 0 {
		return true
	}
	sr.b.streamed.Add(int64(n))
	if !sr.tc.gotFirst {
		sr.tc.gotFirst = true
		res.TTFT = sr.now.Sub(res.Start)
	} else {
		gap := sr.now.Sub(sr.last) / time.Duration(n)
		for range n {
			res.ITL = append(res.ITL, gap)
		}
	}
	sr.last = sr.now
	return true
}

// drainWait bounds reading the end of a finished response.
const drainWait = time.Second

// drained reads what is left of a finished response (a little, quickly, at
// most) and reports whether its connection can carry another request.
func drained(c *conn, resp *http.Response) bool {
	_ = c.c.SetReadDeadline(time.Now().Add(drainWait))
	_, err := io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = c.c.SetReadDeadline(time.Time{})
	return err == io.EOF && !resp.Close
}

// requestError says why a request failed: its own stream stalled, the run
// was cancelled (another stream stalled, the timeout, a dead server), or
// the connection's own error.
func requestError(ctx context.Context, err error, stalled *atomic.Bool, idle time.Duration) string {
	if stalled.Load() {
		return fmt.Sprintf("stream stalled: no data for %s", idle)
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return err.Error()
}
