package natsio

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

func decodeStop(data []byte) (events.StopRequest, error) {
	var req events.StopRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return req, err
	}
	if events.ValidateStudyName(req.Study) != nil || req.Trial < 0 {
		return req, fmt.Errorf("%w: stop request for %q trial %d", events.ErrMalformed, req.Study, req.Trial)
	}
	return req, nil
}

// RequestStop asks the runner of trial (study, trial) to stop it: it writes
// the stop request into the lease bucket, where the trial's runner (and any
// runner that claims it later) sees it. It is what early stopping calls.
func RequestStop(ctx context.Context, leases *natsx.Leases, req events.StopRequest) error {
	if req.RequestedAt.IsZero() {
		req.RequestedAt = time.Now().UTC()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := leases.KV().Put(ctx, events.StopKey(req.Study, req.Trial), data); err != nil {
		return fmt.Errorf("request stop of %s/%d: %w", req.Study, req.Trial, err)
	}
	return nil
}

// stoppedResult is the outcome of a trial stopped on request.
func stoppedResult(q events.TrialQueued, runner, host string, gpus []int, req events.StopRequest, started time.Time) events.TrialResult {
	now := time.Now().UTC()
	return events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, q.Study, q.Trial, now).In(q.Incarnation),
		Params:   q.Params, State: events.StateFailed, FailureClass: events.FailStopped,
		Reason: "stopped on request (" + req.By + "): " + req.Reason, Runner: runner, Host: host, GPUs: gpus,
		StartedAt: started, FinishedAt: now, GPUSeconds: float64(len(gpus)) * now.Sub(started).Seconds(),
	}
}

// prunedResult is the outcome of a trial the sampler stopped early: PRUNED,
// with what it measured before the stop (nil: nothing yet).
func prunedResult(q events.TrialQueued, runner, host string, gpus []int, req events.StopRequest, last *events.Measurement, started time.Time) events.TrialResult {
	res := stoppedResult(q, runner, host, gpus, req, started)
	res.State, res.FailureClass = events.StatePruned, ""
	res.Reason = "stopped early (" + req.By + "): " + req.Reason
	if last != nil {
		res.Metrics = last.Metrics
		res.WorkloadMetrics = last.WorkloadMetrics
		res.LoadPoints = last.LoadPoints
	}
	return res
}

// lastMeasurement keeps a running trial's latest measurement.
type lastMeasurement struct {
	mu sync.Mutex
	m  *events.Measurement
}

func (l *lastMeasurement) set(m events.Measurement) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || m.Step > l.m.Step {
		l.m = &m
	}
}

func (l *lastMeasurement) get() *events.Measurement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m
}
