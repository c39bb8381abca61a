package validator

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// metrics are the validator's Prometheus metrics, registered on
// Config.Metrics (the service's own registry; never the global default).
type metrics struct {
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sgtune_validation_seconds",
			Help:    "Time the validator spent on one delivery of a candidate, by result: done (queued as a trial or rejected), retry (handed back, e.g. its study or a live runner was not there yet), error (dead-lettered).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600},
		}, []string{"result"}),
	}
	// Every result exists from the start, so rates and ratios have series at 0.
	for _, r := range []string{"done", "retry", "error"} {
		m.latency.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.latency)
	}
	return m
}

// timed wraps the candidate handler to observe each delivery's time.
func (m *metrics) timed(h natsx.Handler) natsx.Handler {
	return func(ctx context.Context, data []byte, meta natsx.Meta) error {
		start := time.Now()
		err := h(ctx, data, meta)
		result := "done"
		switch {
		case err == nil:
		case natsx.IsPermanent(err):
			result = "error"
		default:
			result = "retry"
		}
		m.latency.WithLabelValues(result).Observe(time.Since(start).Seconds())
		return err
	}
}
