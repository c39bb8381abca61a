package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	mode      string // "", "error", "stall", "500", "nodone"
	requests  atomic.Int64
	inflight  atomic.Int64
	maxIn     atomic.Int64
	mu        sync.Mutex
	lens      []int
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxIn.Load()
		if n <= m || s.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
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
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	w.WriteHeader(200)
	f.Flush()
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if !sleep(s.ttft) {
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

func startSSE(t *testing.T, s *sseServer) string {
	t.Helper()
	srv := httptest.NewServer(s)
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
