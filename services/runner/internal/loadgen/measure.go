package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Outcome is a workload measured on one server: its one load level, its
// load ladder, or its capacity search.
type Outcome struct {
	// Metrics and Units are the headline level's aggregates (the ladder's
	// headline level, the capacity level), plus capacity_* for a search.
	Metrics map[string]float64
	Units   map[string]string
	// LoadPoints are the levels of a ladder or a search, in the order
	// measured (nil for a single level).
	LoadPoints []events.LoadPoint
	// Headline is the headline level's measurement (nil when there is none).
	Headline *Result
	// Duration is the measured wall time of every level together.
	Duration time.Duration
	// Stopped says why a ladder ended before its last level (a level above
	// the headline failed; the outcome stands).
	Stopped string
	// Reason says why a capacity search found no level meeting its SLO.
	Reason string
}

// InputLens are the headline level's prompt lengths as the server counted
// them (0 for a failed request), in the order sent.
func (o *Outcome) InputLens() []int {
	if o == nil || o.Headline == nil {
		return nil
	}
	out := make([]int, len(o.Headline.Requests))
	for i, r := range o.Headline.Requests {
		if r.OK {
			out[i] = r.InputTokens
		}
	}
	return out
}

// ErrLadderStopped is returned by Measure when a ladder stopped at a failing
// level (request errors) before its headline level was measured, or at the
// headline level itself; the Outcome keeps the levels measured.
var ErrLadderStopped = errors.New("loadgen: the load ladder stopped at a failing level")

// Measure runs o.Workload against the server: its capacity search
// (Workload.Capacity), its load ladder (Workload.Load), or its one level
// (as Run). Every level opens its streams' connections before its clock
// starts; o.OnLevel, when set, receives each level as it is measured.
// Errors are Run's, plus ErrLadderStopped; after a failure the Outcome is
// returned too, with the levels measured before it (a server that crashes
// mid-ladder keeps them).
func Measure(ctx context.Context, o Options) (*Outcome, error) {
	w := o.Workload
	switch {
	case w.Capacity != nil:
		return measureCapacity(ctx, o)
	case w.Load != nil:
		return measureLadder(ctx, o)
	}
	res, err := Run(ctx, o)
	if res == nil {
		return nil, err
	}
	return &Outcome{Metrics: res.Metrics, Units: res.Units, Headline: res, Duration: res.Duration}, err
}

// ladder is a workload's levels: concurrencies or request rates.
func ladder(l *events.LoadLadder) (levels []float64, rate bool) {
	for _, c := range l.Concurrency {
		levels = append(levels, float64(c))
	}
	if len(l.RequestRates) > 0 {
		return l.RequestRates, true
	}
	return levels, false
}

// atLevel is w at one load level.
func atLevel(w events.Workload, level float64, rate bool) events.Workload {
	if rate {
		w.RequestRate = level
	} else {
		w.MaxConcurrency = int(level)
	}
	return w
}

func loadPoint(level float64, rate bool, res *Result) events.LoadPoint {
	p := events.LoadPoint{}
	if rate {
		p.RequestRate = level
	} else {
		p.MaxConcurrency = int(level)
	}
	if res != nil {
		p.Metrics = res.Metrics
	}
	return p
}

func measureLadder(ctx context.Context, o Options) (*Outcome, error) {
	w := o.Workload
	levels, rate := ladder(w.Load)
	headline := w.Load.Headline
	if headline == 0 {
		headline = float64(w.MaxConcurrency)
		if rate {
			headline = w.RequestRate
		}
	}
	s, err := newSession(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.close()
	out := &Outcome{}
	for i, lv := range levels {
		if i > 0 {
			s.flushCache()
		}
		res, err := s.level(atLevel(w, lv, rate), uint64(i), 0)
		p := loadPoint(lv, rate, res)
		if res != nil {
			out.Duration += res.Duration
		}
		failed := err
		if err == nil && res.Metrics["failed"] > 0 {
			failed = fmt.Errorf("%.0f of %d requests failed (first error: %s)", res.Metrics["failed"], len(res.Requests), res.FirstError())
		}
		if failed != nil {
			p.Error = failed.Error()
		}
		if res != nil || failed != nil {
			out.LoadPoints = append(out.LoadPoints, p)
			if o.OnLevel != nil {
				o.OnLevel(p)
			}
		}
		if err != nil && !errors.Is(err, ErrAllFailed) {
			return out, err // timeout, cancelled, a stalled stream (the server hung): the trial fails
		}
		if failed != nil {
			what := fmt.Sprintf("%s %v", levelName(rate), lv)
			if out.Headline == nil {
				return out, fmt.Errorf("%w at %s (headline %v not measured): %v", ErrLadderStopped, what, headline, failed)
			}
			out.Stopped = fmt.Sprintf("stopped at %s: %v", what, failed)
			return out, nil
		}
		if lv == headline {
			out.Headline, out.Metrics, out.Units = res, res.Metrics, res.Units
		}
	}
	if out.Headline == nil {
		return out, fmt.Errorf("%w: the headline level %v is not a level of the ladder", ErrLadderStopped, headline)
	}
	return out, nil
}

func levelName(rate bool) string {
	if rate {
		return "request rate"
	}
	return "concurrency"
}

// flushCache asks the server to drop its prefix cache between levels, so a
// level of a text dataset (whose prompts repeat from level to level) does not
// find the last level's prompts cached. Best effort: SGLang refuses while
// requests run, an OpenAI-compatible server may not have the endpoint.
func (s *session) flushCache() {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	c, err := s.b.ep.dial(ctx)
	if err != nil {
		return
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	wire := s.b.ep.wire(http.MethodPost, "/flush_cache", nil)
	if resp, err := c.send(ctx, wire, http.MethodPost, nil); err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	}
}
