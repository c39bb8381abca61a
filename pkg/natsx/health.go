package natsx

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Health reports whether a service's NATS connection is up, for container
// health checks (`sgtune health http://127.0.0.1:8081/healthz`). Pass one in
// ConnConfig.Health; Connect registers the connection it opens.
type Health struct {
	mu      sync.Mutex
	conns   []*nats.Conn
	started time.Time
}

// NewHealth returns a Health with no connection yet (unhealthy until one connects).
func NewHealth() *Health { return &Health{started: time.Now()} }

func (h *Health) watch(nc *nats.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, nc)
}

// Healthy reports whether every connection opened so far is connected (and
// there is at least one).
func (h *Health) Healthy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) == 0 {
		return false
	}
	for _, nc := range h.conns {
		if !nc.IsConnected() && !nc.IsDraining() {
			return false
		}
	}
	return true
}

// ServeHTTP answers 200 {"status":"ok"} when healthy, 503 otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	ok := h.Healthy()
	w.Header().Set("Content-Type", "application/json")
	status := "ok"
	if !ok {
		status = "not connected to NATS"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "uptime_seconds": int(time.Since(h.started).Seconds())})
}
