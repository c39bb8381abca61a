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
	// tokens as the server counted them (0 for a failed request), in order
	// (the headline level's, for a ladder or a capacity search).
	InputLens, OutputLens []int
	// LoadPoints are the levels of a ladder or capacity search, in order.
	LoadPoints []events.LoadPoint
	// Note says why a ladder stopped early or why no level met a capacity SLO.
	Note string
}

// Bench drives the runner's streaming load generator against a running
// server (what `sgtune bench` does): the workload's one level, its load
// ladder or its capacity search, and returns bench_serving-compatible
// metrics. Errors: the workload is unusable (ErrBadWorkload), every request
// failed, a ladder stopped before its headline level, the timeout passed, or
// ctx ended; the result is returned too when anything was measured.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	res, err := loadgen.Measure(ctx, loadgen.Options{
		BaseURL: o.BaseURL, Workload: o.Workload, Model: o.Model, Timeout: o.Timeout, IdleTimeout: o.IdleTimeout,
		APIKey: o.APIKey,
	})
	if res == nil {
		return nil, err
	}
	out := &BenchResult{Metrics: res.Metrics, Units: res.Units, LoadPoints: res.LoadPoints, Note: res.Stopped + res.Reason}
	if res.Headline == nil {
		return out, err
	}
	for _, r := range res.Headline.Requests {
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
