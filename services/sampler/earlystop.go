package sampler

import (
	"context"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/sampler/internal/pruning"
)

// measured is a running trial's partial measurement, as a runner published it.
type measured struct {
	trial       int
	incarnation string
	m           events.Measurement
}

// tailMeasurements feeds the runners' partial measurements to the loop
// (only with sampler.early_stop).
func (l *loop) tailMeasurements(ctx context.Context, out chan<- measured) error {
	return l.bus.TailMeasurements(ctx, func(trial int, incarnation string, m events.Measurement) {
		select {
		case out <- measured{trial: trial, incarnation: incarnation, m: m}:
		case <-ctx.Done():
		}
	})
}

// judge decides whether a running trial should be stopped early and, if
// so, asks its runner to stop it (once): the runner records it PRUNED with
// what it measured, and the study learns from that like any outcome.
func (l *loop) judge(ctx context.Context, mm measured) {
	if ep := l.bus.Epoch(); ep != "" && mm.incarnation != "" && mm.incarnation != ep {
		return // a measurement of an earlier incarnation of the study
	}
	if l.stopAsked[mm.trial] {
		return
	}
	lg := l.log.With().Int("trial", mm.trial).Int("step", mm.m.Step).Float64("fraction", mm.m.Fraction).Logger()
	d := l.st.ShouldStop(mm.trial, mm.m, pruning.Policy{})
	if !d.Stop {
		lg.Debug().Str("why_not", d.Reason).Msg("early stopping: the trial runs on")
		return
	}
	if err := l.bus.RequestStop(ctx, mm.trial, d.Reason, time.Now()); err != nil {
		if ctx.Err() == nil {
			lg.Warn().Err(err).Msg("early stopping: could not ask the runner to stop the trial")
		}
		return
	}
	if l.stopAsked == nil {
		l.stopAsked = map[int]bool{}
	}
	l.stopAsked[mm.trial] = true
	lg.Info().Str("reason", d.Reason).Msg("early stopping: asked the runner to stop the trial")
}
