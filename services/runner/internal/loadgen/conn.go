package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PreopenTimeout bounds opening every stream's connection before the clock
// (a server that refuses more connections only makes the benchmark start late).
const PreopenTimeout = 10 * time.Second

// MaxPreopen caps the connections opened before the clock: an open loop
// with no concurrency cap opens at most this many, the rest on demand.
const MaxPreopen = 1024

// dialTimeout bounds one TCP (and TLS) connect.
const dialTimeout = 10 * time.Second

// endpoint is where requests go: the server's address and how to reach it.
// The load generator speaks HTTP/1.1 itself on connections it owns, one per
// stream: a stream's next request is written the moment its previous
// response ends, with no connection pool between (net/http's transport hands
// a finished connection back through its own goroutine, and under load a
// request waited up to 5 ms at p99 for it, on the clock), and the request's
// bytes, headers included, are encoded before the clock starts.
type endpoint struct {
	addr   string      // host:port
	host   string      // the Host header
	prefix string      // the base URL's path, prepended to every path
	tls    *tls.Config // nil for http
	apiKey string
}

func newEndpoint(base, apiKey string, tlsConfig *tls.Config) (*endpoint, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: server URL %q: want http://host:port", ErrBadWorkload, base)
	}
	e := &endpoint{host: u.Host, prefix: u.Path, apiKey: apiKey}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		e.tls = &tls.Config{}
		if tlsConfig != nil {
			e.tls = tlsConfig.Clone()
		}
		e.tls.ServerName, e.tls.NextProtos = u.Hostname(), []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("%w: server URL %q: want http or https", ErrBadWorkload, base)
	}
	e.addr = net.JoinHostPort(u.Hostname(), port)
	return e, nil
}

// wire encodes a whole request: request line, headers and body.
func (e *endpoint) wire(method, path string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(body) + 256)
	b.WriteString(method + " " + e.prefix + path + " HTTP/1.1\r\nHost: " + e.host + "\r\nUser-Agent: sgtune-loadgen\r\n")
	if e.apiKey != "" {
		b.WriteString("Authorization: Bearer " + e.apiKey + "\r\n")
	}
	if method == http.MethodPost {
		b.WriteString("Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String())
}

// conn is one stream's kept-alive connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
	// used is true once a request went over it: a reused connection the
	// server closed while idle (uvicorn closes them after 5 s) is retried.
	used bool
}

func (e *endpoint) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if e.tls != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: e.tls}).DialContext(ctx, "tcp", e.addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", e.addr)
	}
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 32<<10)}, nil
}

func (c *conn) close() { _ = c.c.Close() }

// send writes a prepared request and reads the response's status and
// headers. A read that fails before any byte of a response on a reused
// connection means the server closed it while idle: nothing was processed,
// so the caller may send again on a new connection (errStale).
// sent, when not nil, receives the time the request's last byte was written.
// The caller unblocks it on cancellation (a deadline on c).
func (c *conn) send(ctx context.Context, wire []byte, method string, sent *time.Time) (*http.Response, error) {
	reused := c.used
	c.used = true
	_, err := c.c.Write(wire)
	if sent != nil {
		*sent = time.Now()
	}
	if err != nil {
		if reused && ctx.Err() == nil {
			return nil, errStale
		}
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		if reused && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err)) {
			return nil, errStale
		}
		return nil, err
	}
	return resp, nil
}

// errStale marks a kept-alive connection the server had closed.
var errStale = errors.New("server closed the idle connection")

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// connPool holds the idle connections of a run's streams. A stream takes
// one (or opens one, on the clock, when none is idle) and gives it back the
// moment its response ends.
type connPool struct {
	mu   sync.Mutex
	idle []*conn
}

func (p *connPool) get() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	c := p.idle[0] // oldest first: every connection stays in use, none idles out
	p.idle = p.idle[1:]
	return c
}

func (p *connPool) put(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// trim closes the oldest idle connections beyond n (a level with fewer
// streams than the one before: the spare ones would idle until the server
// closes them).
func (p *connPool) trim(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > n {
		p.idle[0].close()
		p.idle = p.idle[1:]
	}
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	for _, c := range p.idle {
		c.close()
	}
	p.idle = nil
	p.mu.Unlock()
}

// probePath is a cheap GET on the server's API: SGLang's /get_model_info
// answers from the HTTP process without touching the scheduler; OpenAI-
// compatible servers have /v1/models. Any status will do: only the round
// trip on the connection matters.
func probePath(openai bool) string {
	if openai {
		return "/v1/models"
	}
	return "/get_model_info"
}

// preopen opens n connections before the clock starts, so that no measured
// request pays for a TCP handshake or for the server accepting a new
// connection (bench_serving opens a session per request and pays it every
// time: see docs/benchmarks.md). Each connection carries one GET round trip,
// so the server has accepted it and set it up. It returns how many it
// opened, and an error only when it could open none.
func (b *bench) preopen(ctx context.Context, n int) (int, error) {
	b.pool.mu.Lock()
	n -= len(b.pool.idle) // the warm-up's connections count
	b.pool.mu.Unlock()
	if n <= 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, PreopenTimeout)
	defer cancel()
	wire := b.ep.wire(http.MethodGet, b.probe, nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		opened   int
		firstErr error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.ep.dial(ctx)
			if err == nil {
				err = probe(ctx, c, wire)
				if err != nil {
					c.close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			opened++
			b.pool.put(c)
		}()
	}
	wg.Wait()
	if errors.Is(firstErr, errNoKeepAlive) {
		return opened, nil // every request will open its own connection (counted in Dialed)
	}
	if opened == 0 && firstErr != nil {
		return 0, fmt.Errorf("open %d connections to %s: %w", n, b.ep.addr, firstErr)
	}
	return opened, nil
}

// probe sends one GET on c and reads its whole response.
func probe(ctx context.Context, c *conn, wire []byte) error {
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err := c.send(ctx, wire, http.MethodGet, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.Close {
		err = errNoKeepAlive
	}
	return err
}

// errNoKeepAlive: the server closes every connection after one response, so
// no connection can be opened ahead of a request.
var errNoKeepAlive = errors.New("the server closes its connections after each response")
