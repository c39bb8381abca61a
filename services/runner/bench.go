package runner

import (
	"context"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
)

// ErrBadWorkload is returned by Bench for a workload that cannot be run: an
// unknown dataset, a dataset file with bad input (the error names the file,
// the line and the field). Nothing was sent.
var ErrBadWorkload = loadgen.ErrBadWorkload

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

// BenchResult is what Bench measured.
type BenchResult struct {
	// Metrics and Units are bench_serving-compatible aggregates.
	Metrics map[string]float64
	Units   map[string]string
	// InputLens and OutputLens are each measured request's prompt and output
	// tokens as the server counted them (0 for a failed request), in order.
	InputLens, OutputLens []int
}

// Bench drives the runner's streaming load generator against a running
// server (what `sgtune bench` does) and returns bench_serving-compatible
// metrics. Errors: the workload is unusable, every request failed (the
// result is still returned), the timeout passed, or ctx ended.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	res, err := loadgen.Run(ctx, loadgen.Options{
		BaseURL: o.BaseURL, Workload: o.Workload, Model: o.Model, Timeout: o.Timeout, IdleTimeout: o.IdleTimeout,
		APIKey: o.APIKey,
	})
	if res == nil {
		return nil, err
	}
	out := &BenchResult{Metrics: res.Metrics, Units: res.Units}
	for _, r := range res.Requests {
		in, outTok := 0, 0
		if r.OK {
			in, outTok = r.InputTokens, r.OutputTokens
		}
		out.InputLens, out.OutputLens = append(out.InputLens, in), append(out.OutputLens, outTok)
	}
	return out, err
}

// CheckWorkload reads w's dataset the way a trial would (a trace, a ShareGPT
// file, a prompt file) and returns its first problem, wrapping
// ErrBadWorkload and naming the file, the line and the field.
func CheckWorkload(w events.Workload) error {
	_, err := loadgen.OpenDataset(w, nil)
	return err
}
