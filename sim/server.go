package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

// routes is SGLang's HTTP API plus the simulator's /sim/* endpoints.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.handleHealth)
	mux.HandleFunc("/health_generate", s.handleHealth)
	mux.HandleFunc("/get_model_info", s.get(s.handleModelInfo))
	mux.HandleFunc("/model_info", s.get(s.handleModelInfo))
	mux.HandleFunc("/get_server_info", s.get(s.handleServerInfo))
	mux.HandleFunc("/server_info", s.get(s.handleServerInfo))
	mux.HandleFunc("/v1/models", s.get(s.handleModels))
	mux.HandleFunc("/generate", s.handleGenerate)
	mux.HandleFunc("/v1/completions", s.handleCompletions)
	mux.HandleFunc("/flush_cache", s.handleFlushCache)
	mux.HandleFunc("/metrics", s.get(s.handleMetrics))
	mux.HandleFunc("/sim/timings", s.get(s.handleTimings))
	mux.HandleFunc("/sim/info", s.get(s.handleSimInfo))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
	})
	return s.middleware(mux)
}

// middleware checks the API key (SGLang exempts /health* and /metrics) and
// writes uvicorn-style access log lines.
func (s *server) middleware(next http.Handler) http.Handler {
	key := s.sa.str("api_key")
	quiet := s.quiet()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		if key != "" && r.Method != http.MethodOptions && !strings.HasPrefix(r.URL.Path, "/health") &&
			!strings.HasPrefix(r.URL.Path, "/metrics") && r.Header.Get("Authorization") != "Bearer "+key {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
			return
		}
		if quiet {
			next.ServeHTTP(w, r)
			return
		}
		rec := &accessLog{ResponseWriter: w, s: s, r: r}
		defer rec.log(http.StatusOK)
		next.ServeHTTP(rec, r)
	})
}

type accessLog struct {
	http.ResponseWriter
	s      *server
	r      *http.Request
	logged bool
}

func (a *accessLog) log(code int) {
	if a.logged {
		return
	}
	a.logged = true
	a.s.lg.raw("INFO:     %s - \"%s %s %s\" %d %s\n", a.r.RemoteAddr, a.r.Method, a.r.URL.RequestURI(), a.r.Proto, code, http.StatusText(code))
}

func (a *accessLog) WriteHeader(code int) {
	a.log(code)
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessLog) Write(b []byte) (int, error) {
	a.log(http.StatusOK)
	return a.ResponseWriter.Write(b)
}

func (a *accessLog) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (s *server) quiet() bool { return s.lg.quiet }

func (s *server) get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// nativeError is /generate's error body; openAIError is /v1's.
func nativeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg}})
}

func openAIError(w http.ResponseWriter, code int, msg string) {
	typ := "BadRequestError"
	if code == http.StatusServiceUnavailable {
		typ = "ServiceUnavailableError"
	}
	writeJSON(w, code, map[string]any{"object": "error", "message": msg, "type": typ, "param": nil, "code": code})
}

func (s *server) ready() bool {
	return s.state.Load() == stateReady && len(s.reps()) > 0
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
		return
	}
	if s.env.fault == FaultNeverHealthy || !s.ready() || s.hung.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *server) servedName() string {
	if n := s.sa.str("served_model_name"); n != "" {
		return n
	}
	return s.sa.str("model_path")
}

func (s *server) handleModelInfo(w http.ResponseWriter, _ *http.Request) {
	tok := s.sa.str("tokenizer_path")
	if tok == "" {
		tok = s.sa.str("model_path")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path": s.sa.str("model_path"), "tokenizer_path": tok, "is_generation": true,
		"preferred_sampling_params": nil, "weight_version": "default",
		"has_image_understanding": false, "has_audio_understanding": false,
		"model_type": s.mdl.ModelType, "architectures": []string{s.mdl.Architecture},
	})
}

func (s *server) handleModels(w http.ResponseWriter, _ *http.Request) {
	ctx := s.mdl.ContextLength
	if s.plan != nil {
		ctx = s.plan.Config.ContextLength
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": s.servedName(), "object": "model", "created": s.startAt.Unix(), "owned_by": "sglang",
		"root": s.sa.str("model_path"), "parent": nil, "max_model_len": ctx,
	}}})
}

func (s *server) handleFlushCache(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n")
}

// effectiveArgs is the flat ServerArgs dict after SGLang's adjustments.
func (s *server) effectiveArgs() map[string]any {
	out := map[string]any{}
	for _, sp := range s.sa.table.specs {
		if v, ok := s.sa.values[sp.name]; ok {
			out[sp.name] = v
		} else {
			out[sp.name] = sp.def
		}
	}
	mp := s.sa.str("model_path")
	if out["tokenizer_path"] == nil {
		out["tokenizer_path"] = mp
	}
	if out["served_model_name"] == nil {
		out["served_model_name"] = mp
	}
	if out["random_seed"] == nil {
		out["random_seed"] = int(s.env.seed % (1 << 30))
	}
	p := s.plan
	if p == nil {
		return out
	}
	c := p.Config
	set := func(k string, v any) { out[k] = v }
	set("tp_size", c.TP)
	set("dp_size", c.DP)
	set("pp_size", c.PP)
	set("ep_size", c.EPSize)
	set("attention_backend", c.AttentionBackend)
	set("chunked_prefill_size", c.ChunkedPrefillSize)
	set("max_prefill_tokens", c.MaxPrefillTokens)
	set("page_size", c.PageSize)
	set("cuda_graph_max_bs", c.CudaGraphMaxBS)
	if p.CudaGraph {
		set("cuda_graph_bs", p.CaptureBS)
	}
	set("disable_cuda_graph", c.DisableCudaGraph)
	set("enable_mixed_chunk", c.EnableMixedChunk)
	set("disable_overlap_schedule", c.DisableOverlapSchedule)
	set("enable_torch_compile", c.EnableTorchCompile)
	set("torch_compile_max_bs", c.TorchCompileMaxBS)
	set("num_continuous_decode_steps", c.NumContinuousDecodeSteps)
	set("enable_two_batch_overlap", c.EnableTwoBatchOverlap)
	set("moe_a2a_backend", c.MoEA2ABackend)
	set("tokenizer_worker_num", c.TokenizerWorkerNum)
	set("sampling_backend", c.SamplingBackend)
	set("schedule_policy", c.SchedulePolicy)
	set("schedule_conservativeness", c.ScheduleConservativeness)
	set("mem_fraction_static", c.MemFractionStatic)
	set("max_running_requests", p.MaxRunningRequests)
	set("enable_dp_attention", c.EnableDPAttention)
	set("context_length", c.ContextLength)
	set("stream_interval", c.StreamInterval)
	set("kv_cache_dtype", c.KVCacheDtype)
	set("dtype", c.Dtype)
	return out
}

func (s *server) handleServerInfo(w http.ResponseWriter, _ *http.Request) {
	out := s.effectiveArgs()
	if p := s.plan; p != nil {
		out["max_total_num_tokens"] = p.MaxTotalTokens
		out["max_req_input_len"] = s.maxInputLen()
		var states []any
		for _, rep := range s.reps() {
			states = append(states, map[string]any{
				"last_gen_throughput":    math.Float64frombits(rep.genTput.Load()),
				"avg_spec_accept_length": nil,
				"memory_usage": map[string]any{"weight": round2(p.WeightGB), "kvcache": round2(p.KVPoolGB),
					"token_capacity": p.MaxTotalTokens, "graph": round2(p.GraphGB)},
				"waiting_queue_size": rep.queued.Load(),
				"running_batch_size": rep.running.Load(),
				"dp_rank":            rep.idx,
			})
		}
		if states == nil {
			states = []any{}
		}
		out["internal_states"] = states
	}
	out["version"] = Version
	writeJSON(w, http.StatusOK, out)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (s *server) maxInputLen() int {
	p := s.plan
	return min(p.Config.ContextLength-1, p.MaxTotalTokens-1)
}

func (s *server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	if !s.sa.bool("enable_metrics") {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
		return
	}
	var running, queued, kv int64
	var tput float64
	for _, rep := range s.reps() {
		running += rep.running.Load()
		queued += rep.queued.Load()
		kv += rep.kvUsed.Load()
		tput += math.Float64frombits(rep.genTput.Load())
	}
	usage := 0.0
	if s.plan != nil {
		usage = float64(kv) / float64(max(s.plan.MaxTotalTokens*s.plan.Replicas, 1))
	}
	name := s.servedName()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_running_reqs The number of running requests.\n# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{model_name=%q} %d\n", name, running)
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.\n# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name=%q} %d\n", name, queued)
	_, _ = fmt.Fprintf(w, "# HELP sglang:token_usage The token usage.\n# TYPE sglang:token_usage gauge\nsglang:token_usage{model_name=%q} %g\n", name, usage)
	_, _ = fmt.Fprintf(w, "# HELP sglang:gen_throughput The generation throughput (token/s).\n# TYPE sglang:gen_throughput gauge\nsglang:gen_throughput{model_name=%q} %g\n", name, tput)
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_requests_total Number of requests processed.\n# TYPE sglang:num_requests_total counter\nsglang:num_requests_total{model_name=%q} %d\n", name, s.nreq.Load())
}

// SimInfo is GET /sim/info: what the simulator pretends to be.
type SimInfo struct {
	GPU            model.Hardware       `json:"gpu"`
	Model          model.Model          `json:"model"`
	StartupSeconds float64              `json:"startup_seconds"`
	Startup        []model.StartupPhase `json:"startup_phases"`
	TimeScale      float64              `json:"time_scale"`
	Noise          float64              `json:"noise"`
	LaunchFactor   float64              `json:"launch_factor"`
	Fault          string               `json:"fault,omitempty"`
	Notes          []string             `json:"notes,omitempty"`
	Replicas       int                  `json:"replicas"`
	MaxTotalTokens int                  `json:"max_total_num_tokens"`
	Requests       int64                `json:"requests"`
}

func (s *server) handleSimInfo(w http.ResponseWriter, _ *http.Request) {
	info := SimInfo{GPU: s.env.hw, Model: s.mdl, TimeScale: s.env.timeScale, Noise: s.env.noise,
		LaunchFactor: s.noise0, Fault: s.env.fault, Requests: s.nreq.Load()}
	if p := s.plan; p != nil {
		info.StartupSeconds = p.StartupSeconds()
		info.Startup = p.StartupPhases()
		info.Notes = p.Notes
		info.Replicas = p.Replicas
		info.MaxTotalTokens = p.MaxTotalTokens
	}
	writeJSON(w, http.StatusOK, info)
}

// Timing is one finished request as the server saw it (GET /sim/timings).
type Timing struct {
	RID                string `json:"rid"`
	ArrivalUnixNano    int64  `json:"arrival_unix_nano"`
	FirstTokenUnixNano int64  `json:"first_token_unix_nano"`
	FinishUnixNano     int64  `json:"finish_unix_nano"`
	PromptTokens       int    `json:"prompt_tokens"`
	CompletionTokens   int    `json:"completion_tokens"`
}

type timingStore struct {
	mu sync.Mutex
	ts []Timing
}

const maxTimings = 1 << 20

func (t *timingStore) add(x Timing) {
	t.mu.Lock()
	if len(t.ts) < maxTimings {
		t.ts = append(t.ts, x)
	}
	t.mu.Unlock()
}

// handleTimings lists finished requests' server-side timings; ?since=<unix
// nanos> keeps those that arrived at or after it, ?reset=1 clears the list
// after reading.
func (s *server) handleTimings(w http.ResponseWriter, r *http.Request) {
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		since, _ = strconv.ParseInt(v, 10, 64)
	}
	s.timings.mu.Lock()
	out := make([]Timing, 0, len(s.timings.ts))
	for _, t := range s.timings.ts {
		if t.ArrivalUnixNano >= since {
			out = append(out, t)
		}
	}
	if r.URL.Query().Get("reset") == "1" {
		s.timings.ts = nil
	}
	s.timings.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// ---- generation ----

var errStopping = errors.New("server stopping")

// genParams are the sampling parameters SGLang validates.
type genParams struct {
	MaxNewTokens *int     `json:"max_new_tokens"`
	MinNewTokens int      `json:"min_new_tokens"`
	Temperature  *float64 `json:"temperature"`
	TopP         *float64 `json:"top_p"`
	TopK         *int     `json:"top_k"`
	IgnoreEOS    bool     `json:"ignore_eos"`
}

func (g *genParams) validate(defMax int) (int, error) {
	maxNew := defMax
	if g.MaxNewTokens != nil {
		maxNew = *g.MaxNewTokens
	}
	if g.Temperature != nil && (*g.Temperature < 0 || math.IsNaN(*g.Temperature) || math.IsInf(*g.Temperature, 0)) {
		return 0, fmt.Errorf("temperature must be non-negative, got %s.", pyFloat(*g.Temperature))
	}
	if g.TopP != nil && (*g.TopP <= 0 || *g.TopP > 1) {
		return 0, fmt.Errorf("top_p must be in (0, 1], got %s.", pyFloat(*g.TopP))
	}
	if g.TopK != nil && *g.TopK < 1 && *g.TopK != -1 {
		return 0, fmt.Errorf("top_k must be -1 (disable), or at least 1, got %d.", *g.TopK)
	}
	if maxNew < 0 {
		return 0, fmt.Errorf("max_new_tokens must be at least 0, got %d.", maxNew)
	}
	if g.MinNewTokens < 0 || g.MinNewTokens > maxNew {
		return 0, fmt.Errorf("min_new_tokens must be in [0, max_new_tokens(%d)], got %d.", maxNew, g.MinNewTokens)
	}
	return maxNew, nil
}

func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

// promptLens decodes text / input_ids forms into prompt lengths in tokens:
// a string, a list of strings, a list of ids, or a list of id lists.
// batch reports a list form (the response is then a list).
func promptLens(raw json.RawMessage, isText bool, vocab int) (lens []int, batch bool, err error) {
	raw = bytes.TrimSpace(raw)
	if isText {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			return []int{textTokens(one)}, false, nil
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return nil, false, errors.New("text must be a string or a list of strings")
		}
		for _, t := range many {
			lens = append(lens, textTokens(t))
		}
		return lens, true, nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		if err := checkIDs(ids, vocab); err != nil {
			return nil, false, err
		}
		return []int{len(ids)}, false, nil
	}
	var lists [][]int64
	if err := json.Unmarshal(raw, &lists); err != nil {
		return nil, false, errors.New("input_ids must be a list of integers or a list of lists of integers")
	}
	for _, l := range lists {
		if err := checkIDs(l, vocab); err != nil {
			return nil, false, err
		}
		lens = append(lens, len(l))
	}
	return lens, true, nil
}

func checkIDs(ids []int64, vocab int) error {
	for _, id := range ids {
		if id < 0 || id >= int64(vocab) {
			return fmt.Errorf("The input_ids contain an out-of-vocabulary token id %d (vocab size %d).", id, vocab)
		}
	}
	return nil
}

// textTokens estimates the token count of a text (~4 characters per token).
func textTokens(t string) int { return max(1, (len(t)+3)/4) }

// checkLength applies SGLang's context-length checks.
func (s *server) checkLength(in, maxNew int) error {
	ctx := s.plan.Config.ContextLength
	if in == 0 {
		return errors.New("The input is empty.")
	}
	if in >= ctx {
		return fmt.Errorf("The input (%d tokens) is longer than the model's context length (%d tokens).", in, ctx)
	}
	if in+maxNew > ctx {
		return fmt.Errorf("Requested token count exceeds the model's maximum context length of %d tokens. You requested a total of %d tokens: %d tokens from the input messages and %d tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.", ctx, in+maxNew, in, maxNew)
	}
	if in > s.maxInputLen() {
		return fmt.Errorf("The input (%d tokens) is longer than the maximum allowed request input length (%d tokens).", in, s.maxInputLen())
	}
	return nil
}

func (s *server) newRID() string {
	s.rngMu.Lock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	s.rngMu.Unlock()
	return fmt.Sprintf("%016x%016x", a, b)
}

// newRequests builds the per-prompt requests of one HTTP request.
func (s *server) newRequests(lens []int, rids []string, maxNew int, ignoreEOS bool, arrival time.Time) []*request {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	out := make([]*request, len(lens))
	for i, l := range lens {
		out[i] = newRequest(s, rids[i], l, maxNew, ignoreEOS, arrival, s.rng)
		out[i].index = i
	}
	return out
}

// submit hands a request to a replica (round robin, like SGLang's default
// load_balance_method) and applies request-count faults.
func (s *server) submit(q *request) {
	n := s.nreq.Add(1)
	switch {
	case s.env.fault == FaultOOMUnderLoad && n >= int64(s.env.faultAfter):
		le := s.plan.RuntimeOOM(s.plan.Config.ChunkedPrefillSize, 64)
		s.printSchedulerTraceback(le)
		s.die(le)
	case s.env.fault == FaultHangDuringBench && n >= int64(s.env.faultAfter):
		s.hung.Store(true)
	}
	if q.maxNew == 0 {
		q.publish(0, true, time.Now())
		return
	}
	reps := s.reps()
	rep := reps[int((s.rr.Add(1)-1)%uint64(len(reps)))]
	q.rep = rep
	select {
	case rep.in <- q:
	case <-s.stop:
	}
}

func (s *server) cancel(q *request) {
	if q.done.Load() || q.rep == nil {
		return
	}
	q.aborted.Store(true)
	select {
	case q.rep.aborts <- q:
	default:
	}
}

// wait blocks until the request has tokens to emit per the stream interval
// (or is done) and returns the visible count. interval 0 waits for the end.
func (s *server) wait(ctx context.Context, q *request, sent, interval int) (int, bool, error) {
	for {
		done := q.done.Load()
		g := int(q.gen.Load())
		if done {
			return g, true, nil
		}
		if interval > 0 && g > sent && (sent == 0 || g/interval > sent/interval) {
			return g, false, nil
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			s.cancel(q)
			return 0, false, ctx.Err()
		case <-s.stop:
			return 0, false, errStopping
		}
	}
}

func (s *server) record(q *request, first time.Time) {
	s.timings.add(Timing{RID: q.rid, ArrivalUnixNano: q.arrival.UnixNano(), FirstTokenUnixNano: first.UnixNano(),
		FinishUnixNano: time.Now().UnixNano(), PromptTokens: q.promptLen, CompletionTokens: int(q.gen.Load())})
}

// tokens materialises a request's output ids and text as JSON fragments.
type tokens struct {
	ids, text []byte
	n         int
	// offsets at the previous chunk, for deltas
	idsMark, textMark, nMark int
}

func (t *tokens) extend(q *request, upto int) {
	for t.n < upto {
		id := q.nextToken()
		if t.n > 0 {
			t.ids = append(t.ids, ',')
		}
		t.ids = strconv.AppendInt(t.ids, int64(id), 10)
		t.text = append(t.text, tokenText(id)...)
		t.n++
	}
}

// delta returns the ids and text since the previous delta and moves the mark.
func (t *tokens) delta() (ids, text []byte) {
	ids, text = t.ids[t.idsMark:], t.text[t.textMark:]
	if len(ids) > 0 && ids[0] == ',' {
		ids = ids[1:]
	}
	t.idsMark, t.textMark, t.nMark = len(t.ids), len(t.text), t.n
	return ids, text
}

// ---- /generate ----

type generateBody struct {
	Text           json.RawMessage `json:"text"`
	InputIDs       json.RawMessage `json:"input_ids"`
	InputEmbeds    json.RawMessage `json:"input_embeds"`
	SamplingParams json.RawMessage `json:"sampling_params"`
	Stream         bool            `json:"stream"`
	RID            json.RawMessage `json:"rid"`
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 256<<20))
}

// decodeRequest checks the method, reads and decodes a JSON body, and refuses
// requests until the server is up, answering errors in the endpoint's own
// format (fail); ok is false when it has answered.
func decodeRequest[T any](s *server, w http.ResponseWriter, r *http.Request, fail func(http.ResponseWriter, int, string), methods ...string) (body T, ok bool) {
	if !slices.Contains(methods, r.Method) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
		return body, false
	}
	raw, err := readBody(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "could not read the request body")
		return body, false
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return body, false
	}
	if !s.ready() {
		fail(w, http.StatusServiceUnavailable, "The server is not ready yet.")
		return body, false
	}
	return body, true
}

func (s *server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	body, ok := decodeRequest[generateBody](s, w, r, nativeError, http.MethodPost, http.MethodPut)
	if !ok {
		return
	}
	isNull := func(m json.RawMessage) bool { return len(m) == 0 || string(bytes.TrimSpace(m)) == "null" }
	var lens []int
	var batch bool
	var err error
	switch {
	case !isNull(body.Text) && !isNull(body.InputIDs):
		err = errors.New("Either text or input_ids should be provided, not both.")
	case !isNull(body.Text):
		lens, batch, err = promptLens(body.Text, true, s.mdl.Vocab)
	case !isNull(body.InputIDs):
		lens, batch, err = promptLens(body.InputIDs, false, s.mdl.Vocab)
	case !isNull(body.InputEmbeds):
		err = errors.New("input_embeds is not supported by this model.")
	default:
		err = errors.New("Either text, input_ids or input_embeds should be provided.")
	}
	if err != nil {
		nativeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var sp genParams
	if !isNull(body.SamplingParams) {
		if bytes.HasPrefix(bytes.TrimSpace(body.SamplingParams), []byte("[")) {
			var list []genParams
			if err := json.Unmarshal(body.SamplingParams, &list); err != nil || len(list) == 0 {
				nativeError(w, http.StatusBadRequest, "sampling_params must be an object or a list of objects")
				return
			}
			sp = list[0]
		} else if err := json.Unmarshal(body.SamplingParams, &sp); err != nil {
			nativeError(w, http.StatusBadRequest, "Invalid sampling_params: "+err.Error())
			return
		}
	}
	maxNew, err := sp.validate(128)
	if err == nil {
		for _, l := range lens {
			if err = s.checkLength(l, maxNew); err != nil {
				break
			}
		}
	}
	if err != nil {
		nativeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rids := make([]string, len(lens))
	var one string
	var many []string
	switch {
	case json.Unmarshal(body.RID, &one) == nil && one != "":
		rids[0] = one
		for i := 1; i < len(rids); i++ {
			rids[i] = fmt.Sprintf("%s_%d", one, i)
		}
	case json.Unmarshal(body.RID, &many) == nil && len(many) == len(lens):
		copy(rids, many)
	}
	for i := range rids {
		if rids[i] == "" {
			rids[i] = s.newRID()
		}
	}
	reqs := s.newRequests(lens, rids, maxNew, sp.IgnoreEOS, arrival)
	for _, q := range reqs {
		s.submit(q)
	}
	if body.Stream {
		s.streamGenerate(w, r, reqs, batch)
		return
	}
	s.finishGenerate(w, r, reqs, batch)
}

func (s *server) incremental() bool { return s.sa.bool("stream_output") }

// generateChunk appends one /generate JSON object (no SSE framing).
func generateChunk(b []byte, q *request, t *tokens, n int, done bool, incremental, batch bool) []byte {
	t.extend(q, n)
	ids, text := t.ids, t.text
	if incremental {
		ids, text = t.delta()
	}
	b = append(b, `{"text":"`...)
	b = append(b, text...)
	b = append(b, `","output_ids":[`...)
	b = append(b, ids...)
	b = append(b, `],"meta_info":{"id":"`...)
	b = appendJSONSafe(b, q.rid)
	b = append(b, `","finish_reason":`...)
	if done {
		b = q.finishReasonJSON(b, n)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(q.promptLen), 10)
	b = append(b, `,"weight_version":"default","completion_tokens":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"cached_tokens":0`...)
	if done {
		b = append(b, `,"e2e_latency":`...)
		b = strconv.AppendFloat(b, time.Since(q.arrival).Seconds(), 'f', 6, 64)
	}
	b = append(b, '}')
	if batch {
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(q.index), 10)
	}
	return append(b, '}')
}

// appendJSONSafe appends s as JSON string content.
func appendJSONSafe(b []byte, s string) []byte {
	enc, _ := json.Marshal(s)
	return append(b, enc[1:len(enc)-1]...)
}

func (s *server) finishGenerate(w http.ResponseWriter, r *http.Request, reqs []*request, batch bool) {
	var out []byte
	if batch {
		out = append(out, '[')
	}
	for i, q := range reqs {
		n, _, err := s.wait(r.Context(), q, 0, 0)
		if err != nil {
			for _, o := range reqs[i:] {
				s.cancel(o)
			}
			if errors.Is(err, errStopping) {
				nativeError(w, http.StatusServiceUnavailable, "The server is shutting down.")
			}
			return
		}
		if i > 0 {
			out = append(out, ',')
		}
		var t tokens
		out = generateChunk(out, q, &t, n, true, false, false)
		s.record(q, time.Unix(0, q.finish.Load()))
	}
	if batch {
		out = append(out, ']')
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

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

func (s *server) streamGenerate(w http.ResponseWriter, r *http.Request, reqs []*request, batch bool) {
	out := newSSE(w)
	interval := max(s.plan.Config.StreamInterval, 1)
	inc := s.incremental()
	var failed bool
	var mu sync.Mutex
	streamEach(reqs, func(q *request) {
		var t tokens
		var buf []byte
		var first time.Time
		sent := 0
		for {
			n, done, err := s.wait(r.Context(), q, sent, interval)
			if err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
				return
			}
			if n > sent || done {
				buf = append(buf[:0], "data: "...)
				buf = generateChunk(buf, q, &t, n, done, inc, batch)
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
	if !failed {
		_ = out.event([]byte("data: [DONE]\n\n"))
	}
}

// ---- /v1/completions ----

type completionBody struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	MinTokens     int             `json:"min_tokens"`
	IgnoreEOS     bool            `json:"ignore_eos"`
	Stream        bool            `json:"stream"`
	N             *int            `json:"n"`
	StreamOptions *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
}

func (s *server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	body, ok := decodeRequest[completionBody](s, w, r, openAIError, http.MethodPost)
	if !ok {
		return
	}
	p := bytes.TrimSpace(body.Prompt)
	var lens []int
	var err error
	switch {
	case len(p) == 0 || string(p) == "null" || string(p) == `""` || string(p) == "[]":
		err = errors.New("The prompt cannot be empty.")
	case p[0] == '"':
		lens, _, err = promptLens(p, true, s.mdl.Vocab)
	case bytes.HasPrefix(p, []byte(`["`)):
		lens, _, err = promptLens(p, true, s.mdl.Vocab)
	default:
		lens, _, err = promptLens(p, false, s.mdl.Vocab)
	}
	if err != nil {
		openAIError(w, http.StatusBadRequest, err.Error())
		return
	}
	gp := genParams{MaxNewTokens: body.MaxTokens, MinNewTokens: body.MinTokens, Temperature: body.Temperature,
		TopP: body.TopP, TopK: body.TopK, IgnoreEOS: body.IgnoreEOS}
	maxNew, err := gp.validate(16)
	if err == nil {
		for _, l := range lens {
			if err = s.checkLength(l, maxNew); err != nil {
				break
			}
		}
	}
	if err != nil {
		openAIError(w, http.StatusBadRequest, err.Error())
		return
	}
	rids := make([]string, len(lens))
	for i := range rids {
		rids[i] = s.newRID()
	}
	reqs := s.newRequests(lens, rids, maxNew, body.IgnoreEOS, arrival)
	for _, q := range reqs {
		s.submit(q)
	}
	name := body.Model
	if name == "" {
		name = s.servedName()
	}
	created := time.Now().Unix()
	if !body.Stream {
		s.finishCompletion(w, r, reqs, name, created)
		return
	}
	includeUsage := body.StreamOptions != nil && body.StreamOptions.IncludeUsage
	continuous := body.StreamOptions != nil && body.StreamOptions.ContinuousUsageStats
	s.streamCompletion(w, r, reqs, name, created, includeUsage, continuous)
}

func (q *request) openAIFinish(n int) string {
	if q.stopByEOS && n == q.outLen {
		return `"stop","matched_stop":2`
	}
	return `"length","matched_stop":null`
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	return append(b, `,"prompt_tokens_details":null}`...)
}

func completionHead(b []byte, id, name string, created int64) []byte {
	b = append(b, `{"id":"`...)
	b = appendJSONSafe(b, id)
	b = append(b, `","object":"text_completion","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":"`...)
	b = appendJSONSafe(b, name)
	return append(b, `","choices":[`...)
}

func (s *server) finishCompletion(w http.ResponseWriter, r *http.Request, reqs []*request, name string, created int64) {
	b := completionHead(nil, reqs[0].rid, name, created)
	prompt, completion := 0, 0
	for i, q := range reqs {
		n, _, err := s.wait(r.Context(), q, 0, 0)
		if err != nil {
			for _, o := range reqs[i:] {
				s.cancel(o)
			}
			if errors.Is(err, errStopping) {
				openAIError(w, http.StatusServiceUnavailable, "The server is shutting down.")
			}
			return
		}
		var t tokens
		t.extend(q, n)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"text":"`...)
		b = append(b, t.text...)
		b = append(b, `","logprobs":null,"finish_reason":`...)
		b = append(b, q.openAIFinish(n)...)
		b = append(b, '}')
		prompt += q.promptLen
		completion += n
		s.record(q, time.Unix(0, q.finish.Load()))
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, prompt, completion)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *server) streamCompletion(w http.ResponseWriter, r *http.Request, reqs []*request, name string, created int64, includeUsage, continuous bool) {
	out := newSSE(w)
	interval := max(s.plan.Config.StreamInterval, 1)
	var mu sync.Mutex
	failed := false
	prompt, completion := 0, 0
	streamEach(reqs, func(q *request) {
		var t tokens
		var buf []byte
		var first time.Time
		sent := 0
		for {
			n, done, err := s.wait(r.Context(), q, sent, interval)
			if err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
				return
			}
			if n > sent || done {
				t.extend(q, n)
				_, text := t.delta()
				buf = append(buf[:0], "data: "...)
				buf = completionHead(buf, q.rid, name, created)
				buf = append(buf, `{"index":`...)
				buf = strconv.AppendInt(buf, int64(q.index), 10)
				buf = append(buf, `,"text":"`...)
				buf = append(buf, text...)
				buf = append(buf, `","logprobs":null,"finish_reason":`...)
				if done {
					buf = append(buf, q.openAIFinish(n)...)
				} else {
					buf = append(buf, `null,"matched_stop":null`...)
				}
				buf = append(buf, `}],"usage":`...)
				if continuous {
					buf = appendUsage(buf, q.promptLen, n)
				} else {
					buf = append(buf, "null"...)
				}
				buf = append(buf, "}\n\n"...)
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
				mu.Lock()
				prompt += q.promptLen
				completion += n
				mu.Unlock()
				return
			}
		}
	})
	if failed {
		return
	}
	if includeUsage {
		b := append([]byte("data: "), completionHead(nil, reqs[0].rid, name, created)...)
		b = append(b, `],"usage":`...)
		b = appendUsage(b, prompt, completion)
		b = append(b, "}\n\n"...)
		_ = out.event(b)
	}
	_ = out.event([]byte("data: [DONE]\n\n"))
}

// serverArgsRepr renders the effective args like Python's dataclass repr.
func (s *server) serverArgsRepr() string {
	args := s.effectiveArgs()
	var b strings.Builder
	b.WriteString("ServerArgs(")
	names := make([]string, 0, len(args))
	for _, sp := range s.sa.table.specs {
		names = append(names, sp.name)
	}
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(pyRepr(args[n]))
	}
	b.WriteByte(')')
	return b.String()
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case float64:
		return pyFloat(x)
	case []int:
		return pyList(x)
	default:
		return fmt.Sprint(x)
	}
}
