// Package fakeserver is a tiny stand-in for an SGLang server, used only by
// tests: a test binary re-executes itself (TestMain checks Enabled) to act as
// a server that is healthy, slow to start, crashes, runs out of memory, hangs,
// answers errors, stalls its streams or ignores SIGTERM. It speaks just enough
// of SGLang's API: /health_generate, streaming /generate and /v1/completions.
//
// Behaviour is chosen by environment variables (set them in LaunchSpec.Env or
// with t.Setenv):
//
//	SGTUNE_FAKE_SERVER=1         act as the server (checked by Enabled)
//	SGTUNE_FAKE_MODE             healthy (default) | crash | oom | hang | starting |
//	                             unhealthy | ignore-term | fork | die-after-healthy
//	                             (the argument --fake-mode M overrides it per launch)
//	SGTUNE_FAKE_STARTUP          time until healthy (Go duration, default 0)
//	SGTUNE_FAKE_TTFT, _ITL       time to first token, time between tokens (default 1ms)
//	SGTUNE_FAKE_STREAM           normal (default) | stall | error | http500
//	SGTUNE_FAKE_TOKENS_PER_CHUNK tokens per streamed chunk (default 1)
//	SGTUNE_FAKE_API_KEY          require "Authorization: Bearer <key>" (not on /health*)
//	SGTUNE_FAKE_CRASH_AFTER      die (CUDA out of memory, exit 1) at the Nth generation request
//	SGTUNE_FAKE_TTFT_PER_STREAM, SGTUNE_FAKE_ITL_PER_STREAM
//	                             add this much to TTFT (at arrival) and to each inter-token gap
//	                             per generation request in flight: a latency that grows with load
//	                             in a known way (the capacity benchmark's stand-in)
//	SGTUNE_FAKE_INFO             normal (default) | http500 | garbage: how /get_server_info answers
//	SGTUNE_FAKE_LOADED_MODEL     the model_path /get_model_info reports (default: --model-path)
//	SGTUNE_FAKE_ADJUST           k=v,... effective values /get_server_info reports instead of the
//	                             flags' (SGLang's silent adjustments), e.g. chunked_prefill_size=8192
//
// It also times itself, independently of sglang-sim's model: GET
// /fake/timings lists every finished generation request with its "rid",
// when its handler started and when its first token was flushed (Unix
// nanoseconds; ?reset=1 clears the list). With a GPU-like TTFT and ITL
// (e.g. 50ms and 30ms) it is the reference of the load generator's fidelity
// benchmark.
package fakeserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// EnvSwitch is the variable that turns a test binary into the fake server.
const EnvSwitch = "SGTUNE_FAKE_SERVER"

// Enabled reports whether this process should act as the fake server.
func Enabled() bool { return os.Getenv(EnvSwitch) != "" }

// Command is the argv prefix that starts the fake server: this test binary.
func Command() []string { return []string{os.Args[0]} }

// Env returns the environment entries that select a mode, e.g.
// Env("oom", nil) or Env("healthy", map[string]string{"SGTUNE_FAKE_TTFT": "5ms"}).
func Env(mode string, extra map[string]string) []string {
	env := []string{EnvSwitch + "=1", "SGTUNE_FAKE_MODE=" + mode}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

func dur(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// sleepForever blocks without tripping the runtime's deadlock detector
// ("all goroutines are asleep" exits with status 2, which would look like a
// crash): a sleeping goroutine has a timer pending.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// Main runs the fake server and returns the process exit code.
func Main() int {
	mode := os.Getenv("SGTUNE_FAKE_MODE")
	host, port := "127.0.0.1", "0"
	args := os.Args[1:]
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--host":
			host = args[i+1]
		case "--port":
			port = args[i+1]
		case "--fake-mode":
			mode = args[i+1]
		}
	}
	fmt.Printf("fake sglang: mode=%q args=%q gpus=%q\n", mode, args, os.Getenv("CUDA_VISIBLE_DEVICES"))
	switch mode {
	case "crash":
		time.Sleep(dur("SGTUNE_FAKE_STARTUP", 0))
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):\nValueError: unsupported attention backend")
		return 1
	case "oom":
		time.Sleep(dur("SGTUNE_FAKE_STARTUP", 0))
		fmt.Fprintln(os.Stderr, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
		return 1
	case "hang":
		sleepForever()
	case "child":
		signal.Ignore(syscall.SIGTERM)
		sleepForever()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "fork":
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "SGTUNE_FAKE_MODE=child")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fork:", err)
			return 1
		}
		fmt.Printf("fake sglang: child pid %d\n", c.Process.Pid)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	s := &server{mode: mode, ready: time.Now().Add(dur("SGTUNE_FAKE_STARTUP", 0)),
		ttft: dur("SGTUNE_FAKE_TTFT", time.Millisecond), itl: dur("SGTUNE_FAKE_ITL", time.Millisecond),
		ttftPer: dur("SGTUNE_FAKE_TTFT_PER_STREAM", 0), itlPer: dur("SGTUNE_FAKE_ITL_PER_STREAM", 0),
		stream: os.Getenv("SGTUNE_FAKE_STREAM"), perChunk: 1}
	if n, err := strconv.Atoi(os.Getenv("SGTUNE_FAKE_TOKENS_PER_CHUNK")); err == nil && n > 0 {
		s.perChunk = n
	}
	s.apiKey = os.Getenv("SGTUNE_FAKE_API_KEY")
	s.args = args
	if n, err := strconv.Atoi(os.Getenv("SGTUNE_FAKE_CRASH_AFTER")); err == nil {
		s.crashAfter = int64(n)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health_generate", s.health)
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc("/generate", s.generate)
	mux.HandleFunc("/v1/completions", s.completions)
	mux.HandleFunc("/get_model_info", s.getModelInfo)
	mux.HandleFunc("/get_server_info", s.getServerInfo)
	mux.HandleFunc("/v1/models", s.modelInfo)
	mux.HandleFunc("/fake/timings", s.handleTimings)
	srv := &http.Server{Handler: s.auth(mux)}

	term := make(chan os.Signal, 1)
	if mode != "ignore-term" {
		signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	}
	go func() {
		<-term
		fmt.Println("fake sglang: SIGTERM, shutting down")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(ctx)
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

type server struct {
	mode      string
	ready     time.Time
	ttft, itl time.Duration
	stream    string
	perChunk  int
	healthy   atomic.Bool
	apiKey    string
	args      []string // the launch flags, reported by /get_server_info
	timings   timings
	// crashAfter > 0 kills the server at that generation request.
	crashAfter  int64
	generations atomic.Int64
	// inflight counts generation requests between arrival and their last
	// chunk; ttftPer and itlPer scale the latency with it.
	inflight        atomic.Int64
	ttftPer, itlPer time.Duration
}

// auth checks the API key as SGLang does: every path but /health*.
func (s *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.apiKey != "" && !strings.HasPrefix(r.URL.Path, "/health") && r.Header.Get("Authorization") != "Bearer "+s.apiKey {
			http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) modelInfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"model_path":"fake","is_generation":true}`)
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.mode == "unhealthy":
		http.Error(w, "internal error", http.StatusInternalServerError)
	case s.mode == "starting" || time.Now().Before(s.ready):
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		if s.mode == "die-after-healthy" && s.healthy.Swap(true) == false {
			go func() {
				time.Sleep(50 * time.Millisecond)
				fmt.Fprintln(os.Stderr, "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.")
				os.Exit(3)
			}()
		}
		w.WriteHeader(http.StatusOK)
	}
}

type genRequest struct {
	RID            string `json:"rid"`
	InputIDs       []int  `json:"input_ids"`
	Text           string `json:"text"`
	Prompt         any    `json:"prompt"`
	MaxTokens      int    `json:"max_tokens"`
	Stream         bool   `json:"stream"`
	SamplingParams struct {
		MaxNewTokens int `json:"max_new_tokens"`
	} `json:"sampling_params"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// begin reads a generation request and starts its stream; arrival is when
// the handler started (the server's own clock for TTFT).
func (s *server) begin(w http.ResponseWriter, r *http.Request) (req genRequest, f http.Flusher, arrival time.Time, ok bool) {
	arrival = time.Now()
	if n := s.generations.Add(1); s.crashAfter > 0 && n >= s.crashAfter {
		fmt.Fprintln(os.Stderr, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB")
		os.Exit(1)
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"object":"error","message":"bad json"}`, http.StatusBadRequest)
		return req, nil, arrival, false
	}
	if s.stream == "http500" {
		http.Error(w, `{"object":"error","message":"boom"}`, http.StatusInternalServerError)
		return req, nil, arrival, false
	}
	s.inflight.Add(1) // the handler's caller takes it back (done)
	w.Header().Set("Content-Type", "text/event-stream")
	f = w.(http.Flusher)
	w.WriteHeader(http.StatusOK)
	f.Flush()
	ttft := s.ttft + time.Duration(s.inflight.Load())*s.ttftPer
	select {
	case <-time.After(ttft):
	case <-r.Context().Done():
		s.inflight.Add(-1)
		return req, nil, arrival, false
	}
	return req, f, arrival, true
}

func (s *server) generate(w http.ResponseWriter, r *http.Request) {
	req, f, arrival, ok := s.begin(w, r)
	defer s.done(f)
	if !ok {
		return
	}
	var first time.Time
	prompt := len(req.InputIDs)
	if prompt == 0 {
		prompt = len(strings.Fields(req.Text))
	}
	n := req.SamplingParams.MaxNewTokens
	// The text is cumulative, as SGLang's native stream sends it; chunks are
	// built in one reused buffer so that the stand-in's own CPU stays small
	// at hundreds of streams (it shares the machine with the client).
	text := make([]byte, 0, n)
	var chunk []byte
	for done := 0; done < n; {
		if done > 0 {
			if !s.pause(r, done) {
				return
			}
		}
		if s.stream == "error" && done > 0 {
			fmt.Fprint(w, "data: {\"error\": {\"message\": \"scheduler died\"}}\n\n")
			f.Flush()
			return
		}
		k := min(s.perChunk, n-done)
		done += k
		for range k {
			text = append(text, 'x')
		}
		chunk = append(chunk[:0], `data: {"text":"`...)
		chunk = append(chunk, text...)
		chunk = append(chunk, `","meta_info":{"id":"r","prompt_tokens":`...)
		chunk = strconv.AppendInt(chunk, int64(prompt), 10)
		chunk = append(chunk, `,"completion_tokens":`...)
		chunk = strconv.AppendInt(chunk, int64(done), 10)
		chunk = append(chunk, `,"finish_reason":`...)
		if done == n {
			chunk = append(chunk, `{"type":"length","length":`...)
			chunk = strconv.AppendInt(chunk, int64(n), 10)
			chunk = append(chunk, '}')
		} else {
			chunk = append(chunk, "null"...)
		}
		chunk = append(chunk, "}}\n\n"...)
		_, _ = w.Write(chunk)
		f.Flush()
		if first.IsZero() {
			first = time.Now()
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	f.Flush()
	s.timings.add(req.RID, arrival, first)
}

// done ends a generation request begin counted in flight (f is nil when
// begin did not count it, or took it back: the client left during its TTFT).
func (s *server) done(f http.Flusher) {
	if f != nil {
		s.inflight.Add(-1)
	}
}

// pause waits one inter-token gap; in stall mode the second chunk never comes.
func (s *server) pause(r *http.Request, done int) bool {
	d := s.itl + time.Duration(s.inflight.Load())*s.itlPer
	if s.stream == "stall" {
		d = time.Hour
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *server) completions(w http.ResponseWriter, r *http.Request) {
	req, f, _, ok := s.begin(w, r)
	defer s.done(f)
	if !ok {
		return
	}
	prompt := 0
	switch p := req.Prompt.(type) {
	case string:
		prompt = len(strings.Fields(p))
	case []any:
		prompt = len(p)
	}
	n := req.MaxTokens
	for done := 0; done < n; {
		if done > 0 && !s.pause(r, done) {
			return
		}
		k := min(s.perChunk, n-done)
		done += k
		finish := "null"
		if done == n {
			finish = `"length"`
		}
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":%q,\"finish_reason\":%s}],\"usage\":null}\n\n", strings.Repeat("y", k), finish)
		f.Flush()
	}
	if req.StreamOptions.IncludeUsage {
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", prompt, n, prompt+n)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	f.Flush()
}

// Timing is one finished request as the fake server saw it (GET /fake/timings).
type Timing struct {
	RID                string `json:"rid"`
	ArrivalUnixNano    int64  `json:"arrival_unix_nano"`
	FirstTokenUnixNano int64  `json:"first_token_unix_nano"`
}

type timings struct {
	mu sync.Mutex
	ts []Timing
}

// add records a request that carried a rid.
func (t *timings) add(rid string, arrival, first time.Time) {
	if rid == "" || first.IsZero() {
		return
	}
	t.mu.Lock()
	t.ts = append(t.ts, Timing{RID: rid, ArrivalUnixNano: arrival.UnixNano(), FirstTokenUnixNano: first.UnixNano()})
	t.mu.Unlock()
}

func (s *server) handleTimings(w http.ResponseWriter, r *http.Request) {
	s.timings.mu.Lock()
	out := append([]Timing{}, s.timings.ts...)
	if r.URL.Query().Get("reset") == "1" {
		s.timings.ts = nil
	}
	s.timings.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
