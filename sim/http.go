package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
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
