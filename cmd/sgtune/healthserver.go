package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// healthFlag adds --health-addr (env SGTUNE_HEALTH_ADDR) to a command.
func healthFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("health-addr", getenv("SGTUNE_HEALTH_ADDR"),
		"serve GET /healthz (200 while connected to NATS) and GET /metrics (Prometheus) on `ADDR` (e.g. 127.0.0.1:8081)")
}

// newRegistry is a service's own Prometheus registry (never the global
// default one), with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startHealth returns the Health a service's connections report to and the
// registry its metrics go to, both served on addr (--health-addr) until ctx
// is done; an empty addr serves nothing (the metrics are still collected).
func startHealth(ctx context.Context, addr string) (*natsx.Health, *prometheus.Registry, error) {
	h := natsx.NewHealth()
	reg := newRegistry()
	return h, reg, serveHealth(ctx, addr, h, reg)
}

// healthMux routes /healthz to h and /metrics to the gathered registries.
func healthMux(h http.Handler, g prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	if h != nil {
		mux.Handle("/healthz", h)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// serveHealth serves /healthz for h and /metrics for g on addr until ctx is
// done. An empty addr serves nothing. It returns once the listener is bound,
// so a bad address is reported before the service starts.
func serveHealth(ctx context.Context, addr string, h http.Handler, g prometheus.Gatherer) error {
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health endpoint: %w", err)
	}
	serve(ctx, l, healthMux(h, g))
	return nil
}

// serve runs an HTTP server on l until ctx is done.
func serve(ctx context.Context, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
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
}

// servePage serves h on addr until ctx is done and returns its URL.
func servePage(ctx context.Context, addr string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("serve the front page: %w", err)
	}
	serve(ctx, l, h)
	return "http://" + l.Addr().String() + "/", nil
}

// upMetrics holds one registry per service `sgtune up` runs (each runner
// registers the same metric names with its own runner label, so they cannot
// share one), plus the process's Go and process collectors.
type upMetrics struct {
	mu   sync.Mutex
	regs []*prometheus.Registry
}

func newUpMetrics() *upMetrics { return &upMetrics{regs: []*prometheus.Registry{newRegistry()}} }

// service returns a new registry for one service.
func (m *upMetrics) service() prometheus.Registerer {
	reg := prometheus.NewRegistry()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.regs = append(m.regs, reg)
	return reg
}

// gatherers gathers every registry handed out so far and later.
func (m *upMetrics) gatherers() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		m.mu.Lock()
		g := make(prometheus.Gatherers, len(m.regs))
		for i, r := range m.regs {
			g[i] = r
		}
		m.mu.Unlock()
		return g.Gather()
	})
}

// withMetrics adds GET /metrics to a page handler.
func withMetrics(page http.Handler, g prometheus.Gatherer) http.Handler {
	mux := healthMux(nil, g)
	mux.Handle("/", page)
	return mux
}
