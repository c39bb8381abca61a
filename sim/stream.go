package sim

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sse writes SSE events to one response, serialised across the goroutines
// of a batch.
type sse struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func newSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w)}
	_ = e.rc.Flush()
	return e
}

// event writes "data: <payload>\n\n" and flushes.
func (e *sse) event(b []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if _, err := e.w.Write(b); err != nil {
		e.err = err
		return err
	}
	e.err = e.rc.Flush()
	return e.err
}

// streamEach runs fn for every request of a batch concurrently (inline for one).
func streamEach(reqs []*request, fn func(q *request)) {
	if len(reqs) == 1 {
		fn(reqs[0])
		return
	}
	var wg sync.WaitGroup
	for _, q := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(q)
		}()
	}
	wg.Wait()
}

// chunkWriter formats one endpoint's stream: /generate and /v1/completions
// share the stream loop and differ only in their chunks.
type chunkWriter interface {
	// chunk appends the JSON payload of one event for q with n tokens
	// visible; done marks its last event (called once per request).
	chunk(b []byte, q *request, t *tokens, n int, done bool) []byte
	// tail appends the payload of a final event after every request
	// finished, or nothing.
	tail(b []byte) []byte
}

// stream sends the requests of one HTTP request as SSE: one event per
// --stream-interval decode steps for each request (the first token at once),
// then the writer's tail and "data: [DONE]". A request's first token time
// (for /sim/timings) is taken when its first event has been flushed. A client
// that goes away aborts its requests; a server shutdown ends the stream
// without [DONE].
func (s *server) stream(w http.ResponseWriter, r *http.Request, reqs []*request, cw chunkWriter) {
	out := newSSE(w)
	interval := max(s.plan.Config.StreamInterval, 1)
	var failed atomic.Bool
	streamEach(reqs, func(q *request) {
		var t tokens
		var buf []byte
		var first time.Time
		sent := 0
		for {
			n, done, err := s.wait(r.Context(), q, sent, interval)
			if err != nil {
				failed.Store(true)
				return
			}
			if n > sent || done {
				buf = append(buf[:0], "data: "...)
				buf = cw.chunk(buf, q, &t, n, done)
				buf = append(buf, "\n\n"...)
				if out.event(buf) != nil {
					s.cancel(q)
					return
				}
				if sent == 0 && n > 0 {
					first = time.Now()
				}
				sent = n
			}
			if done {
				if first.IsZero() {
					first = time.Now()
				}
				s.record(q, first)
				return
			}
		}
	})
	if failed.Load() {
		return
	}
	if b := cw.tail([]byte("data: ")); len(b) > len("data: ") {
		_ = out.event(append(b, "\n\n"...))
	}
	_ = out.event([]byte("data: [DONE]\n\n"))
}
