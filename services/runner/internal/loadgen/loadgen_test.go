package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// sseServer is an SGLang-like streaming server with known timing.
type sseServer struct {
	ttft, itl time.Duration
	perChunk  int
	mode      string // "", "error", "stall", "500", "nodone", "emptyfirst", "abort"
	apiKey    string // required as a bearer token when set
	// ttftPerStream adds this much to ttft per request in flight (a server
	// whose latency grows with load in a known way); overloadAbove answers
	// HTTP 503 while more requests than this are in flight (0: never).
	ttftPerStream time.Duration
	overloadAbove int64
	requests      atomic.Int64 // generation requests (POST)
	probes        atomic.Int64 // other requests (GET)
	flushes       atomic.Int64 // POST /flush_cache
	// conns counts new connections; postOnNew counts POSTs that were the
	// first request on their connection (a measured request paying for it).
	conns, postOnNew atomic.Int64
	seen             sync.Map // remote address -> true once it carried a request
	inflight         atomic.Int64
	maxIn            atomic.Int64
	// headerDelay holds a generation request's response headers this long
	// (a server slow to take requests); untaken counts the requests whose
	// headers are not yet written, maxUntaken the most seen at once.
	headerDelay         time.Duration
	untaken, maxUntaken atomic.Int64
	mu                  sync.Mutex
	lens                []int // output lengths asked, in arrival order
	inLens              []int // input lengths sent
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, used := s.seen.LoadOrStore(r.RemoteAddr, true)
	if s.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/flush_cache" {
		s.flushes.Add(1)
		return
	}
	if r.Method != http.MethodPost {
		s.probes.Add(1)
		fmt.Fprint(w, `{"model_path":"m","is_generation":true}`)
		return
	}
	if !used {
		s.postOnNew.Add(1)
	}
	s.requests.Add(1)
	raiseMax(&s.maxUntaken, s.untaken.Add(1))
	taken := sync.OnceFunc(func() { s.untaken.Add(-1) })
	defer taken()
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	raiseMax(&s.maxIn, n)
	var req struct {
		InputIDs       []int `json:"input_ids"`
		MaxTokens      int   `json:"max_tokens"`
		SamplingParams struct {
			MaxNewTokens int `json:"max_new_tokens"`
		} `json:"sampling_params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if s.overloadAbove > 0 && n > s.overloadAbove {
		http.Error(w, `{"message":"overloaded"}`, http.StatusServiceUnavailable)
		return
	}
	ttft := s.ttft + time.Duration(n)*s.ttftPerStream
	if s.mode == "500" {
		http.Error(w, `{"message":"overloaded"}`, 500)
		return
	}
	openai := r.URL.Path == "/v1/completions"
	out := req.SamplingParams.MaxNewTokens
	if openai {
		out = req.MaxTokens
	}
	s.mu.Lock()
	s.lens = append(s.lens, out)
	s.inLens = append(s.inLens, len(req.InputIDs))
	s.mu.Unlock()
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if s.headerDelay > 0 && !sleep(s.headerDelay) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	taken() // before the headers leave: a paced client sends its next request only after
	w.WriteHeader(200)
	f.Flush()
	if s.mode == "emptyfirst" {
		// A chunk with no text (a token that decodes to nothing yet) comes
		// first; the first visible token follows after ttft.
		fmt.Fprint(w, "data: {\"text\":\"\",\"meta_info\":{\"completion_tokens\":1}}\n\n")
		f.Flush()
	}
	if !sleep(ttft) {
		return
	}
	if s.mode == "abort" {
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"abort\"}]}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	per := max(s.perChunk, 1)
	for done := 0; done < out; {
		if done > 0 {
			if s.mode == "stall" {
				sleep(time.Hour)
				return
			}
			if s.mode == "error" {
				fmt.Fprint(w, "data: {\"error\": {\"message\": \"boom\"}}\n\n")
				f.Flush()
				return
			}
			if !sleep(s.itl) {
				return
			}
		}
		k := min(per, out-done)
		done += k
		if openai {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\"%s\"}]}\n\n", strings.Repeat("x", k))
		} else {
			fmt.Fprintf(w, "data:{\"text\":\"%s\",\"meta_info\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}}\r\n\r\n", strings.Repeat("x", done), len(req.InputIDs), done)
		}
		f.Flush()
	}
	if openai {
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":%d}}\n\n", out)
	}
	if s.mode != "nodone" {
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

// raiseMax sets m to n when n is larger.
func raiseMax(m *atomic.Int64, n int64) {
	for {
		old := m.Load()
		if n <= old || m.CompareAndSwap(old, n) {
			return
		}
	}
}

func startSSE(t *testing.T, s *sseServer) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func baseWorkload() events.Workload {
	return events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 20, RandomInputLen: 32,
		RandomOutputLen: 8, RandomRangeRatio: 1, MaxConcurrency: 4, WarmupRequests: 2, Seed: 1, IgnoreEOS: true}
}

func TestRun_native_stream_measures_ttft_itl_tokens(t *testing.T) {
	t.Parallel()
	s := &sseServer{ttft: 30 * time.Millisecond, itl: 5 * time.Millisecond, perChunk: 2}
	url := startSSE(t, s)
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: baseWorkload(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	m := res.Metrics
	if m["completed"] != 20 || m["failed"] != 0 {
		t.Fatalf("completed %v failed %v (%s)", m["completed"], m["failed"], res.FirstError())
	}
	if got := s.requests.Load(); got != 22 {
		t.Fatalf("server saw %d requests, want 20 measured + 2 warm-up", got)
	}
	if s.maxIn.Load() > 4 {
		t.Fatalf("max in flight %d > MaxConcurrency 4", s.maxIn.Load())
	}
	if m["total_output_tokens"] != 160 || m["total_input_tokens"] != 640 {
		t.Fatalf("tokens in/out = %v/%v, want 640/160", m["total_input_tokens"], m["total_output_tokens"])
	}
	if m["mean_ttft_ms"] < 30 || m["mean_ttft_ms"] > 60 {
		t.Fatalf("mean_ttft_ms = %v, want about 30", m["mean_ttft_ms"])
	}
	// 2 tokens a chunk every 5 ms: each gap is spread over 2 tokens.
	for _, r := range res.Requests {
		if len(r.ITL) != 6 {
			t.Fatalf("ITL has %d entries, want 6 (3 later chunks of 2 tokens)", len(r.ITL))
		}
	}
	if m["median_itl_ms"] < 2 || m["median_itl_ms"] > 10 {
		t.Fatalf("median_itl_ms = %v, want about 2.5", m["median_itl_ms"])
	}
	if m["concurrency"] <= 0 || m["concurrency"] > 4.01 {
		t.Fatalf("concurrency = %v", m["concurrency"])
	}
	for _, k := range []string{"p99_ttft_ms", "p90_tpot_ms", "p95_itl_ms", "max_itl_ms", "std_e2e_latency_ms", "request_throughput", "total_throughput"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing metric %s", k)
		}
	}
}

func TestRun_openai_usage_counts_tokens(t *testing.T) {
	t.Parallel()
	s := &sseServer{itl: time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.Backend = "openai"
	w.NumPrompts = 5
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Metrics["total_output_tokens"] != 40 || res.Metrics["total_input_tokens"] != 15 {
		t.Fatalf("tokens = %v in, %v out", res.Metrics["total_input_tokens"], res.Metrics["total_output_tokens"])
	}
}

func TestRun_failures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		givenMode   string
		expectedErr string
		expectedIs  error
	}{
		{name: "error event", givenMode: "error", expectedErr: "server error: boom", expectedIs: ErrAllFailed},
		{name: "http 500", givenMode: "500", expectedErr: "HTTP 500", expectedIs: ErrAllFailed},
		// A stall aborts the run: the other requests end as cancelled.
		{name: "stall", givenMode: "stall", expectedErr: "stalled", expectedIs: ErrStalled},
		{name: "no done and no finish", givenMode: "nodone", expectedErr: "before the request finished", expectedIs: ErrAllFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := startSSE(t, &sseServer{mode: tt.givenMode, itl: time.Millisecond})
			w := baseWorkload()
			w.NumPrompts, w.WarmupRequests = 3, 0
			res, err := Run(context.Background(), Options{BaseURL: url, Workload: w, IdleTimeout: 200 * time.Millisecond})
			if !errors.Is(err, tt.expectedIs) {
				t.Fatalf("err = %v, want %v", err, tt.expectedIs)
			}
			if res == nil || !strings.Contains(res.FirstError(), tt.expectedErr) {
				t.Fatalf("result %+v, first error %q", res, res.FirstError())
			}
			if tt.expectedIs == ErrAllFailed && res.Metrics["failed"] != 3 {
				t.Fatalf("failed = %v, want 3", res.Metrics["failed"])
			}
		})
	}
}

func TestRun_timeout_is_a_bench_error(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{itl: 50 * time.Millisecond})
	w := baseWorkload()
	w.RandomOutputLen = 100
	start := time.Now()
	_, err := Run(context.Background(), Options{BaseURL: url, Workload: w, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout took %v", time.Since(start))
	}
}

func TestRun_cancelled_ctx(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{itl: 50 * time.Millisecond})
	w := baseWorkload()
	w.RandomOutputLen = 100
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Options{BaseURL: url, Workload: w})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
}

func TestRun_poisson_rate_paces_requests(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{})
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests, w.MaxConcurrency, w.RequestRate = 20, 0, 0, 100
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	// 20 arrivals at 100/s take about 0.2 s; all at once would take a few ms.
	if res.Duration < 50*time.Millisecond || res.Duration > 2*time.Second {
		t.Fatalf("duration %v, want about 200ms", res.Duration)
	}
}

func TestRun_opens_every_stream_connection_before_the_clock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		givenNoPreopen    bool
		expectedPreopened int
		expectedDialed    int
	}{
		// The warm-up opened one connection; pre-opening adds the other 7.
		{name: "pre-opened", expectedPreopened: 7, expectedDialed: 0},
		// As bench_serving: the first wave of measured requests opens them.
		{name: "on demand", givenNoPreopen: true, expectedDialed: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &sseServer{ttft: 5 * time.Millisecond, itl: time.Millisecond}
			url := startSSE(t, s)
			w := baseWorkload()
			w.NumPrompts, w.MaxConcurrency, w.WarmupRequests = 40, 8, 1
			res, err := Run(context.Background(), Options{BaseURL: url, Workload: w, NoPreopen: tt.givenNoPreopen})
			if err != nil {
				t.Fatal(err)
			}
			if res.Preopened != tt.expectedPreopened || res.Dialed != tt.expectedDialed {
				t.Fatalf("preopened %d, dialed on the clock %d; want %d, %d", res.Preopened, res.Dialed, tt.expectedPreopened, tt.expectedDialed)
			}
			// Never more connections than streams, and the server saw the
			// same: only the warm-up and, without pre-opening, the first
			// wave paid for a new connection.
			if got := s.conns.Load(); got != 8 {
				t.Fatalf("server saw %d connections, want 8 (one per stream)", got)
			}
			if got, want := s.postOnNew.Load(), int64(1+tt.expectedDialed); got != want {
				t.Fatalf("%d generation requests opened their connection, want %d", got, want)
			}
		})
	}
}

func TestRun_first_wave_goes_as_the_server_takes_it(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		givenBurst       bool
		givenTake        time.Duration // how long to wait for the previous request's headers
		givenHeaderDelay time.Duration
		expectedAtOnce   func(int64) bool
		expectedText     string
	}{
		// Each stream's first request goes once the server answered the one
		// before: the server never holds two it has not taken.
		{name: "paced", givenTake: time.Minute, givenHeaderDelay: 2 * time.Millisecond,
			expectedAtOnce: func(n int64) bool { return n == 1 }, expectedText: "1"},
		// A server that answers with its headers late (here: 200 ms) does
		// not hold up the wave: after firstWaveTake the next goes anyway.
		{name: "headers late", givenHeaderDelay: 200 * time.Millisecond,
			expectedAtOnce: func(n int64) bool { return n > 1 }, expectedText: "more than 1"},
		// Options.Burst: the whole wave at once.
		{name: "burst", givenBurst: true, givenTake: time.Minute, givenHeaderDelay: 200 * time.Millisecond,
			expectedAtOnce: func(n int64) bool { return n > 1 }, expectedText: "more than 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &sseServer{ttft: time.Millisecond, itl: time.Millisecond, headerDelay: tt.givenHeaderDelay}
			url := startSSE(t, s)
			w := baseWorkload()
			w.NumPrompts, w.MaxConcurrency, w.WarmupRequests = 16, 16, 0 // one wave
			res, err := Run(context.Background(), Options{BaseURL: url, Workload: w, Burst: tt.givenBurst, firstWaveTake: tt.givenTake})
			if err != nil {
				t.Fatal(err)
			}
			if res.Metrics["completed"] != 16 {
				t.Fatalf("completed %v of 16", res.Metrics["completed"])
			}
			if got := s.maxUntaken.Load(); !tt.expectedAtOnce(got) {
				t.Fatalf("the server held %d requests it had not answered at once, want %s", got, tt.expectedText)
			}
		})
	}
}

func TestRun_sends_the_api_key(t *testing.T) {
	t.Parallel()
	s := &sseServer{apiKey: "sk-test", itl: time.Millisecond}
	url := startSSE(t, s)
	w := baseWorkload()
	w.NumPrompts = 6
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w, APIKey: "sk-test"})
	if err != nil || res.Metrics["completed"] != 6 {
		t.Fatalf("with the key: %v %v", err, res)
	}
	if s.probes.Load() == 0 {
		t.Fatal("the connection probes did not carry the key")
	}
	res, err = Run(context.Background(), Options{BaseURL: url, Workload: w})
	if !errors.Is(err, ErrAllFailed) || !strings.Contains(res.FirstError(), "HTTP 401") {
		t.Fatalf("without the key: %v (%s)", err, res.FirstError())
	}
}

func TestRun_an_empty_first_chunk_is_not_the_first_token(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{mode: "emptyfirst", ttft: 60 * time.Millisecond, itl: time.Millisecond})
	w := baseWorkload()
	w.NumPrompts, w.WarmupRequests = 4, 0
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Metrics["mean_ttft_ms"]; m < 60 {
		t.Fatalf("mean_ttft_ms = %v: the empty chunk sent at once counted as the first token", m)
	}
	for _, r := range res.Requests {
		if r.OutputTokens != 8 || len(r.ITL) != 7 {
			t.Fatalf("output %d tokens, %d gaps; want 8, 7", r.OutputTokens, len(r.ITL))
		}
	}
}

func TestRun_an_openai_abort_fails_the_request(t *testing.T) {
	t.Parallel()
	url := startSSE(t, &sseServer{mode: "abort", itl: time.Millisecond})
	w := baseWorkload()
	w.Backend, w.NumPrompts, w.WarmupRequests = "openai", 3, 0
	res, err := Run(context.Background(), Options{BaseURL: url, Workload: w})
	if !errors.Is(err, ErrAllFailed) || !strings.Contains(res.FirstError(), "abort") {
		t.Fatalf("err %v, first error %q", err, res.FirstError())
	}
}

func TestRun_survives_connections_the_server_closes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given func(*httptest.Server)
	}{
		// uvicorn closes a kept-alive connection idle for 5 s: requests
		// spaced wider than the server's idle timeout find theirs closed.
		{name: "idle timeout", given: func(s *httptest.Server) { s.Config.IdleTimeout = 5 * time.Millisecond }},
		{name: "no keep-alive", given: func(s *httptest.Server) { s.Config.SetKeepAlivesEnabled(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &sseServer{itl: time.Millisecond}
			srv := httptest.NewUnstartedServer(s)
			tt.given(srv)
			srv.Start()
			t.Cleanup(srv.Close)
			w := baseWorkload()
			w.NumPrompts, w.MaxConcurrency, w.RequestRate, w.WarmupRequests = 8, 2, 40, 1
			res, err := Run(context.Background(), Options{BaseURL: srv.URL, Workload: w})
			if err != nil || res.Metrics["completed"] != 8 {
				t.Fatalf("err %v, result %+v", err, res)
			}
		})
	}
}

func TestRun_https(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(&sseServer{itl: time.Millisecond})
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	w := baseWorkload()
	w.NumPrompts = 5
	res, err := Run(context.Background(), Options{BaseURL: srv.URL, Workload: w, TLS: &tls.Config{RootCAs: roots}})
	if err != nil || res.Metrics["completed"] != 5 || res.Preopened != 2 {
		t.Fatalf("err %v, metrics %v, preopened %d", err, res.Metrics, res.Preopened)
	}
}

func TestRun_bad_server_url(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"localhost:30000", "ftp://x:1", "http://"} {
		if _, err := Run(context.Background(), Options{BaseURL: u, Workload: baseWorkload()}); !errors.Is(err, ErrBadWorkload) {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func BenchmarkRun512Streams(b *testing.B) {
	s := &sseServer{ttft: 20 * time.Millisecond, itl: 10 * time.Millisecond}
	srv := httptest.NewServer(s)
	defer srv.Close()
	w := baseWorkload()
	w.NumPrompts, w.MaxConcurrency, w.RandomOutputLen, w.WarmupRequests = 1024, 512, 64, 0
	for b.Loop() {
		res, err := Run(context.Background(), Options{BaseURL: srv.URL, Workload: w})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Metrics["mean_ttft_ms"], "ttft_ms")
		b.ReportMetric(res.Metrics["output_throughput"], "tok/s")
	}
}
