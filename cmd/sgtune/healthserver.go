package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sgtune/sgtune/pkg/natsx"
)

// healthFlag adds --health-addr (env SGTUNE_HEALTH_ADDR) to a service command.
func healthFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("health-addr", getenv("SGTUNE_HEALTH_ADDR"),
		"serve GET /healthz on this address (e.g. 127.0.0.1:8081): 200 while connected to NATS")
}

// startHealth returns the Health a service's connections report to, served on
// addr (--health-addr) until ctx is done; an empty addr serves nothing.
func startHealth(ctx context.Context, addr string) (*natsx.Health, error) {
	h := natsx.NewHealth()
	return h, serveHealth(ctx, addr, h)
}

// serveHealth serves /healthz for h on addr until ctx is done. An empty addr
// serves nothing. It returns once the listener is bound, so a bad address is
// reported before the service starts.
func serveHealth(ctx context.Context, addr string, h *natsx.Health) error {
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return nil
}

// servePage serves h on addr until ctx is done and returns its URL.
func servePage(ctx context.Context, addr string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("serve the front page: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return "http://" + l.Addr().String() + "/", nil
}
