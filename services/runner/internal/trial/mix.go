package trial

import (
	"context"
	"fmt"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
)

// benchOutcome is what the benchmark of a trial measured: one workload's
// metrics, or a mix's aggregated metrics with every workload's own.
type benchOutcome struct {
	Metrics map[string]float64
	Units   map[string]string
	// Duration is the measured phases' wall time, summed over the mix.
	Duration time.Duration
	// PerWorkload holds each finished workload's metrics (a mix only).
	PerWorkload map[string]map[string]float64
}

// benchmark drives the trial's workload against the server at url — or
// each workload of its mix, one after the other, on the same server (one
// launch). A workload that fails ends the mix: the error is returned with
// the workloads measured before it in PerWorkload. benchTO bounds each
// workload's run.
func (e *Executor) benchmark(ctx context.Context, q events.TrialQueued, url string, benchTO time.Duration, progress ProgressFunc) (benchOutcome, error) {
	if len(q.Workloads) == 0 {
		out, err := e.runWorkload(ctx, q, q.Workload, url, benchTO)
		if err != nil {
			return benchOutcome{}, err
		}
		return benchOutcome{Metrics: out.Metrics, Units: out.Units, Duration: out.Duration}, nil
	}
	res := benchOutcome{Units: map[string]string{}, PerWorkload: map[string]map[string]float64{}}
	for i, w := range q.Workloads {
		out, err := e.runWorkload(ctx, q, w.Workload, url, benchTO)
		if err != nil {
			return res, fmt.Errorf("workload %s (%d of %d): %w", w.Name, i+1, len(q.Workloads), err)
		}
		res.PerWorkload[w.Name] = out.Metrics
		for k, u := range out.Units {
			res.Units[k] = u
		}
		res.Duration += out.Duration
		progress(events.PhaseBenchmarking, fmt.Sprintf("workload %s measured (%d of %d)", w.Name, i+1, len(q.Workloads)))
	}
	res.Metrics = study.AggregateMix(q.Workloads, q.MixAggregates, res.PerWorkload)
	return res, nil
}

// runWorkload measures one workload on the server at url.
func (e *Executor) runWorkload(ctx context.Context, q events.TrialQueued, w events.Workload, url string, benchTO time.Duration) (*loadgen.Result, error) {
	return loadgen.Run(ctx, loadgen.Options{
		BaseURL: url, Workload: w, Model: modelName(q.ServerArgs),
		Timeout: benchTO, IdleTimeout: e.cfg.IdleTimeout, APIKey: apiKey(q.ServerArgs),
	})
}
