package sglang

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// HealthPath is the readiness endpoint: it answers 200 only once the server
// can generate a token (SGLang's own tests poll it the same way).
const HealthPath = "/health_generate"

// HealthPathPlain is the readiness endpoint asked of a server that answers
// 404 to HealthPath (SGLang serves both from one handler; a build or a
// stand-in without the old name still says when it is up).
const HealthPathPlain = "/health"

// Poll intervals of WaitHealthy: start fast (the simulator starts in
// milliseconds), back off to once a second (SGLang takes minutes).
const (
	healthPollMin = 250 * time.Millisecond
	healthPollMax = time.Second
	// healthRequestTimeout bounds one probe; SGLang answers 503 after 20 s at worst.
	healthRequestTimeout = 30 * time.Second
)

var healthClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// probe is the outcome of one health request.
type probe struct {
	status int   // HTTP status, 0 when no answer
	err    error // transport error
}

func (s *Server) probe(ctx context.Context) probe {
	ctx, cancel := context.WithTimeout(ctx, healthRequestTimeout)
	defer cancel()
	path := s.healthPath()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+path, nil)
	if err != nil {
		return probe{err: err}
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return probe{err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && path == HealthPath {
		s.plainHealth.Store(true)
		return s.probe(ctx)
	}
	return probe{status: resp.StatusCode}
}

// healthPath is the readiness endpoint this server is asked.
func (s *Server) healthPath() string {
	if s.plainHealth.Load() {
		return HealthPathPlain
	}
	return HealthPath
}

// Healthy asks /health_generate once and reports whether it answered 200.
func (s *Server) Healthy(ctx context.Context) bool { return s.probe(ctx).status == http.StatusOK }

// WaitHealthy polls /health_generate until it answers 200 and returns the
// time since launch. It fails fast when the process exits (a *Failure of
// class oom or crash) and gives up after timeout with a *Failure of class
// timeout (the server never answered, or only with 503 "starting") or
// unhealthy (it answered, but with other errors such as 500). A cancelled ctx
// returns ctx's error: that is the runner stopping, not a result.
func (s *Server) WaitHealthy(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// Probes are cancelled when the process exits, so a hung request does not
	// delay the fast failure.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.exited:
			cancel()
		case <-pctx.Done():
		}
	}()

	interval := healthPollMin
	var last probe
	lastAnswer := 0 // the last HTTP status seen, 0 when none yet
	for {
		type result struct{ p probe }
		done := make(chan result, 1)
		go func() { done <- result{s.probe(pctx)} }()
		select {
		case r := <-done:
			last = r.p
			if last.status == http.StatusOK {
				return time.Since(s.started), nil
			}
			if last.status != 0 {
				lastAnswer = last.status
			}
		case <-s.exited:
			return 0, s.ExitFailure()
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, s.notHealthy(timeout, last, lastAnswer)
		}
		select {
		case <-time.After(interval):
		case <-s.exited:
			return 0, s.ExitFailure()
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, s.notHealthy(timeout, last, lastAnswer)
		}
		interval = min(interval*2, healthPollMax)
	}
}

func (s *Server) notHealthy(timeout time.Duration, last probe, lastAnswer int) *Failure {
	if f := s.ExitFailure(); f != nil {
		return f
	}
	if s.OOMSeen() {
		return &Failure{Class: events.FailOOM, Reason: fmt.Sprintf("server logged an out-of-memory error and was not healthy within %s", timeout)}
	}
	path := s.healthPath()
	switch {
	case lastAnswer != 0 && lastAnswer != http.StatusServiceUnavailable:
		return &Failure{Class: events.FailUnhealthy, Reason: fmt.Sprintf("%s kept answering %d for %s", path, lastAnswer, timeout)}
	case lastAnswer != 0:
		return &Failure{Class: events.FailTimeout, Reason: fmt.Sprintf("server was still starting (%s answered %d) after %s", path, lastAnswer, timeout)}
	default:
		reason := fmt.Sprintf("server did not answer %s within %s", path, timeout)
		if last.err != nil {
			reason += " (last error: " + last.err.Error() + ")"
		}
		return &Failure{Class: events.FailTimeout, Reason: reason}
	}
}
