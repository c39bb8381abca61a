package runner

import (
	"context"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// BaseURL is the server to load, e.g. "http://127.0.0.1:30000".
	BaseURL string
	// Workload is the benchmark (as in a study spec).
	Workload events.Workload
	// Model is the "model" field of /v1/completions requests (default "default").
	Model string
	// Timeout bounds warm-up plus the measured phase; 0 means none.
	Timeout time.Duration
	// IdleTimeout fails a request whose stream stalls this long (default 2m).
	IdleTimeout time.Duration
	// APIKey is sent as a bearer token (the server's --api-key), if set.
	APIKey string
}

// Bench drives the runner's streaming load generator against a running
// server (what `sgtune bench` does) and returns bench_serving-compatible
// metrics and their units. Errors: the workload is unusable, every request
// failed (metrics are still returned), the timeout passed, or ctx ended.
func Bench(ctx context.Context, o BenchOptions) (map[string]float64, map[string]string, error) {
	res, err := loadgen.Run(ctx, loadgen.Options{
		BaseURL: o.BaseURL, Workload: o.Workload, Model: o.Model, Timeout: o.Timeout, IdleTimeout: o.IdleTimeout,
		APIKey: o.APIKey,
	})
	if res == nil {
		return nil, nil, err
	}
	return res.Metrics, res.Units, err
}
