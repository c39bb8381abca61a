package sglang

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestHealthFallsBackToPlainHealth: a server that answers 404 to
// /health_generate is asked /health, and only /health from then on.
func TestHealthFallsBackToPlainHealth(t *testing.T) {
	t.Parallel()
	var generateAsked, plainAsked atomic.Int32
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case HealthPathPlain:
			plainAsked.Add(1)
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		default:
			if r.URL.Path == HealthPath {
				generateAsked.Add(1)
			}
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s := &Server{baseURL: srv.URL, exited: make(chan struct{})}
	if s.Healthy(context.Background()) {
		t.Fatal("healthy while /health answers 503")
	}
	up.Store(true)
	if !s.Healthy(context.Background()) {
		t.Fatal("not healthy once /health answers 200")
	}
	if g, p := generateAsked.Load(), plainAsked.Load(); g != 1 || p != 2 {
		t.Fatalf("asked %s %d times and %s %d times, want 1 and 2", HealthPath, g, HealthPathPlain, p)
	}
}

// TestHealthAsksHealthGenerate: a server that knows /health_generate is
// never asked /health.
func TestHealthAsksHealthGenerate(t *testing.T) {
	t.Parallel()
	var plainAsked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthPathPlain {
			plainAsked.Add(1)
		}
		if r.URL.Path != HealthPath {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s := &Server{baseURL: srv.URL, exited: make(chan struct{})}
	if !s.Healthy(context.Background()) || plainAsked.Load() != 0 {
		t.Fatalf("healthy %v, /health asked %d times", s.Healthy(context.Background()), plainAsked.Load())
	}
}
