package sim

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Timing is one finished request as the server saw it (GET /sim/timings).
type Timing struct {
	RID                string `json:"rid"`
	ArrivalUnixNano    int64  `json:"arrival_unix_nano"`
	FirstTokenUnixNano int64  `json:"first_token_unix_nano"`
	FinishUnixNano     int64  `json:"finish_unix_nano"`
	PromptTokens       int    `json:"prompt_tokens"`
	CompletionTokens   int    `json:"completion_tokens"`
	// CachedTokens is the prompt tokens the prefix cache served.
	CachedTokens int `json:"cached_tokens"`
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

func (s *server) record(q *request, first time.Time) {
	s.timings.add(Timing{RID: q.rid, ArrivalUnixNano: q.arrival.UnixNano(), FirstTokenUnixNano: first.UnixNano(),
		FinishUnixNano: time.Now().UnixNano(), PromptTokens: q.promptLen, CompletionTokens: int(q.gen.Load()),
		CachedTokens: int(q.cached.Load())})
}
