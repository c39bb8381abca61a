package trial

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
	// LoadPoints are the levels of the workload's ladder or capacity search
	// (one workload); PerWorkloadLoadPoints each workload's (a mix).
	LoadPoints            []events.LoadPoint
	PerWorkloadLoadPoints map[string][]events.LoadPoint
	// InputLens are the headline level's prompt lengths as served (one workload).
	InputLens []int
	// Note is the load generator's word on a measurement that stands: why a
	// ladder stopped early, why no level met a capacity SLO.
	Note string
}

// benchmark drives the trial's workload against the server at url — or
// each workload of its mix, one after the other, on the same server (one
// launch). A workload that fails ends the mix: the error is returned with
// the workloads measured before it in PerWorkload. benchTO bounds each
// workload's run. m (nil: none) is told what is measured as it goes.
func (e *Executor) benchmark(ctx context.Context, q events.TrialQueued, url string, benchTO time.Duration, progress ProgressFunc, m *measurer) (benchOutcome, error) {
	if len(q.Workloads) == 0 {
		out, err := e.runWorkload(ctx, q, q.Workload, url, benchTO, progress, m.checkpoints(0))
		if out == nil {
			return benchOutcome{}, err
		}
		// A failed ladder or search keeps the levels measured before it failed.
		res := benchOutcome{LoadPoints: out.LoadPoints}
		if err != nil {
			return res, err
		}
		res.Metrics, res.Units, res.Duration = out.Metrics, out.Units, out.Duration
		res.InputLens, res.Note = out.InputLens(), out.Stopped+out.Reason
		return res, nil
	}
	res := benchOutcome{Units: map[string]string{}, PerWorkload: map[string]map[string]float64{},
		PerWorkloadLoadPoints: map[string][]events.LoadPoint{}}
	for i, w := range q.Workloads {
		out, err := e.runWorkload(ctx, q, w.Workload, url, benchTO, progress, m.checkpoints(i))
		if out != nil && len(out.LoadPoints) > 0 {
			res.PerWorkloadLoadPoints[w.Name] = out.LoadPoints
		}
		if err != nil {
			return res, fmt.Errorf("workload %s (%d of %d): %w", w.Name, i+1, len(q.Workloads), err)
		}
		res.PerWorkload[w.Name] = out.Metrics
		for k, u := range out.Units {
			res.Units[k] = u
		}
		res.Duration += out.Duration
		progress(events.PhaseBenchmarking, fmt.Sprintf("workload %s measured (%d of %d)", w.Name, i+1, len(q.Workloads)))
		if i+1 < len(q.Workloads) {
			m.workloadDone(i, out.Metrics, int(out.Metrics["completed"]+out.Metrics["failed"]))
		}
	}
	res.Metrics = study.AggregateMix(q.Workloads, q.MixAggregates, res.PerWorkload)
	return res, nil
}

// runWorkload measures one workload on the server at url: its one level,
// its load ladder or its capacity search (the one call into the load
// generator); each level measured is reported as progress.
func (e *Executor) runWorkload(ctx context.Context, q events.TrialQueued, w events.Workload, url string, benchTO time.Duration, progress ProgressFunc, cp checkpoints) (*loadgen.Outcome, error) {
	return loadgen.Measure(ctx, loadgen.Options{
		BaseURL: url, Workload: w, Model: modelName(q.ServerArgs),
		Timeout: benchTO, IdleTimeout: e.cfg.IdleTimeout, APIKey: apiKey(q.ServerArgs),
		OnLevel: func(p events.LoadPoint) {
			progress(events.PhaseBenchmarking, levelMessage(p))
			if cp.level != nil {
				cp.level(p)
			}
		},
		Checkpoints: cp.at, OnCheckpoint: cp.fn,
	})
}

// levelMessage is a measured level in words, for the trial's progress.
func levelMessage(p events.LoadPoint) string {
	level := fmt.Sprintf("concurrency %d", p.MaxConcurrency)
	if p.RequestRate > 0 {
		level = fmt.Sprintf("request rate %g/s", p.RequestRate)
	}
	msg := fmt.Sprintf("%s: mean TTFT %.1f ms, p99 TTFT %.1f ms, %.0f output tok/s", level,
		p.Metrics["mean_ttft_ms"], p.Metrics["p99_ttft_ms"], p.Metrics["output_throughput"])
	if p.SLOMet != nil {
		msg += fmt.Sprintf(", SLO met: %t", *p.SLOMet)
	}
	if p.Error != "" {
		msg += ", failed: " + p.Error
	}
	return msg
}

// CheckpointFractions are the shares of each workload's measured requests
// after which a running trial reports what it measured (early stopping):
// early ones stop a hopeless trial cheaply, later ones judge a close call
// on more requests.
var CheckpointFractions = []float64{0.1, 0.2, 0.35, 0.5, 0.65}

// checkpoints is the loadgen hook of one workload's run: checkpoints
// inside its level, or a call per finished level.
type checkpoints struct {
	at    []float64
	fn    func(loadgen.Checkpoint)
	level func(events.LoadPoint)
}

// measurer turns the load generator's checkpoints into the trial's
// measurements (events.Measurement): the headline metrics estimated so
// far, and for a mix the finished workloads' metrics with the hard bounds
// they put on the mix's worst-case aggregates.
type measurer struct {
	q        events.TrialQueued
	startup  float64
	observe  ObserveFunc
	step     int
	mix      []events.NamedWorkload
	finished map[string]map[string]float64
	doneReqs int                // measured requests of the finished workloads
	points   []events.LoadPoint // the levels finished so far (one workload)
}

func newMeasurer(q events.TrialQueued, startupSeconds float64, observe ObserveFunc) *measurer {
	if observe == nil {
		return nil
	}
	return &measurer{q: q, startup: startupSeconds, observe: observe, mix: q.Workloads, finished: map[string]map[string]float64{}}
}

// checkpoints is the hook for workload i (0 without a mix). A workload
// with a ladder or a capacity search has none inside its levels (a level's
// partial metrics are no estimate of the headline level's): its finished
// levels are reported instead (level).
func (m *measurer) checkpoints(i int) checkpoints {
	if m == nil {
		return checkpoints{}
	}
	w := m.workload(i)
	if w.Load != nil || w.Capacity != nil {
		if len(m.mix) > 0 {
			return checkpoints{}
		}
		return checkpoints{level: m.level}
	}
	return checkpoints{at: CheckpointFractions, fn: func(c loadgen.Checkpoint) { m.checkpoint(i, c) }}
}

func (m *measurer) workload(i int) events.Workload {
	if len(m.mix) == 0 {
		return m.q.Workload
	}
	return m.mix[i].Workload
}

// planned is the trial's measured requests, when workload i has total.
func (m *measurer) planned(i, total int) int {
	n := m.doneReqs + total
	for _, w := range m.mix[min(i+1, len(m.mix)):] {
		n += w.NumPrompts
	}
	return max(n, 1)
}

func (m *measurer) checkpoint(i int, c loadgen.Checkpoint) {
	meas := events.Measurement{Requests: len(c.Done), Fraction: float64(m.doneReqs+len(c.Done)) / float64(m.planned(i, c.Total))}
	if len(m.mix) == 0 {
		meas.Metrics = maps.Clone(c.Metrics)
	} else {
		all := maps.Clone(m.finished)
		all[m.mix[i].Name] = c.Metrics
		meas.Metrics = m.mixEstimate(i, all)
		m.bounds(&meas)
	}
	m.emit(meas)
}

// workloadDone records that workload i of the mix finished (not the last).
func (m *measurer) workloadDone(i int, metrics map[string]float64, requests int) {
	if m == nil {
		return
	}
	m.finished[m.mix[i].Name] = metrics
	m.doneReqs += requests
	meas := events.Measurement{Requests: requests, Fraction: float64(m.doneReqs) / float64(m.planned(i, 0)),
		Metrics: m.mixEstimate(i, maps.Clone(m.finished))}
	m.bounds(&meas)
	m.emit(meas)
}

// mixEstimate aggregates the workloads measured so far (the first i+1).
// A weighted mean over part of the mix is no estimate of the whole, so
// until the last workload runs only the worst-case aggregates (a maximum or
// minimum so far) are given.
func (m *measurer) mixEstimate(i int, per map[string]map[string]float64) map[string]float64 {
	agg := study.AggregateMix(m.mix[:i+1], m.q.MixAggregates, per)
	if i+1 == len(m.mix) {
		return agg
	}
	out := map[string]float64{}
	for k, v := range agg {
		switch study.MixAggregate(m.q.MixAggregates, k) {
		case events.AggregateMax, events.AggregateMin:
			out[k] = v
		}
	}
	return out
}

// bounds adds what the finished workloads prove about the mix's worst
// cases: its maximum can only grow, its minimum only shrink.
func (m *measurer) bounds(meas *events.Measurement) {
	if len(m.finished) == 0 {
		return
	}
	names := make([]events.NamedWorkload, 0, len(m.finished))
	for _, w := range m.mix {
		if _, ok := m.finished[w.Name]; ok {
			names = append(names, w)
		}
	}
	agg := study.AggregateMix(names, m.q.MixAggregates, m.finished)
	for k, v := range agg {
		switch study.MixAggregate(m.q.MixAggregates, k) {
		case events.AggregateMax:
			if meas.Lower == nil {
				meas.Lower = map[string]float64{}
			}
			meas.Lower[k] = v
		case events.AggregateMin:
			if meas.Upper == nil {
				meas.Upper = map[string]float64{}
			}
			meas.Upper[k] = v
		}
	}
	meas.WorkloadMetrics = maps.Clone(m.finished)
}

func (m *measurer) emit(meas events.Measurement) {
	m.step++
	meas.Step = m.step
	if meas.Metrics == nil {
		meas.Metrics = map[string]float64{}
	}
	meas.Metrics["startup_seconds"] = m.startup
	// Per-GPU twins of the rates (and of their bounds), as results have them.
	study.AddPerGPU(meas.Metrics, nil, m.q.GPUs)
	study.AddPerGPU(meas.Lower, nil, m.q.GPUs)
	study.AddPerGPU(meas.Upper, nil, m.q.GPUs)
	m.observe(meas)
}

// level reports a finished level of the (single) workload's ladder or
// capacity search. A ladder's headline level gives the headline metrics
// themselves. A capacity search gives bounds: capacity is below the lowest
// level that missed the SLO, so its throughput is at most that level's
// (throughput grows with load), and its latencies are at least those of
// the highest level that met it (latency grows with load).
func (m *measurer) level(p events.LoadPoint) {
	// A repeated level (a capacity search pools a close call) replaces its
	// earlier measurement.
	if i := slices.IndexFunc(m.points, func(q events.LoadPoint) bool { return q.Level() == p.Level() }); i >= 0 {
		m.points[i] = p
	} else {
		m.points = append(m.points, p)
	}
	w := m.q.Workload
	meas := events.Measurement{Requests: int(p.Metrics["completed"]), LoadPoints: slices.Clone(m.points)}
	switch {
	case w.Load != nil:
		levels := len(w.Load.Concurrency) + len(w.Load.RequestRates)
		meas.Fraction = float64(len(m.points)) / float64(max(levels, 1))
		headline := w.Load.Headline
		if headline == 0 {
			headline = float64(w.MaxConcurrency)
			if len(w.Load.RequestRates) > 0 {
				headline = w.RequestRate
			}
		}
		if p.Level() != headline || p.Error != "" {
			return // no estimate of the headline metrics yet (or no more)
		}
		meas.Metrics = maps.Clone(p.Metrics)
	case w.Capacity != nil:
		maxLevels := w.Capacity.MaxLevels
		if maxLevels <= 0 {
			maxLevels = study.DefaultCapacityMaxLevels
		}
		meas.Fraction = min(float64(len(m.points))/float64(maxLevels), 1)
		m.capacityBounds(&meas)
		if meas.Upper == nil && meas.Lower == nil {
			return
		}
	default:
		return
	}
	m.emit(meas)
}

// capacityBounds sets what the levels measured so far prove about the
// capacity search's result.
func (m *measurer) capacityBounds(meas *events.Measurement) {
	c := m.q.Workload.Capacity
	var lowFail, highMet *events.LoadPoint
	for i := range m.points {
		p := &m.points[i]
		if p.SLOMet == nil || p.Error != "" {
			continue
		}
		if *p.SLOMet && (highMet == nil || p.Level() > highMet.Level()) {
			highMet = p
		}
		if !*p.SLOMet && (lowFail == nil || p.Level() < lowFail.Level()) {
			lowFail = p
		}
	}
	if lowFail != nil {
		meas.Upper = map[string]float64{study.CapacityMetric(c.Search): lowFail.Level()}
		if v, ok := lowFail.Metrics["output_throughput"]; ok {
			meas.Upper["capacity_output_throughput"] = v
			meas.Upper["output_throughput"] = v
		}
	}
	if highMet != nil {
		meas.Lower = map[string]float64{}
		for k, v := range highMet.Metrics {
			if study.IsLatencyMetric(k) {
				meas.Lower[k] = v
			}
		}
	}
}
