package sampling

import (
	"fmt"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/pruning"
)

// PruneFront is the study's feasible Pareto front as the pruner compares
// it: each member's trial number and objective values in the spec's units
// and directions.
func (s *Study) PruneFront() []pruning.Member {
	dirs := s.spec.Directions()
	var cands []*trial
	var pts [][]float64
	for _, t := range s.h.bench {
		if t.feasible && t.repeatOf == nil && len(t.y) == len(dirs) {
			cands = append(cands, t)
			pts = append(pts, t.y)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	var out []pruning.Member
	for _, i := range study.ParetoFront(pts, study.MinDirections(len(dirs))) {
		out = append(out, pruning.Member{Trial: cands[i].number, Values: study.MinForm(cands[i].y, dirs)})
	}
	return out
}

// ShouldStop judges a running trial's measurement for early stopping
// (sampler.early_stop): whether the trial may be stopped at all — it is
// running, it is neither the baseline (the reference every gain is
// measured against) nor a repeat run of a front member, and the study has
// its startup trials and a front — and then whether what it measured can
// still reach the front (pruning.Decide).
func (s *Study) ShouldStop(trialNumber int, m events.Measurement, p pruning.Policy) pruning.Decision {
	t, ok := s.h.byNumber[trialNumber]
	obs := pruning.Observe(&s.spec, m)
	if ok && t.status == statusPending {
		s.es.measured(trialNumber, obs)
	}
	switch {
	case !ok:
		return pruning.Decision{Reason: fmt.Sprintf("trial %d is not known", trialNumber)}
	case t.status != statusPending:
		return pruning.Decision{Reason: "the trial already has its outcome"}
	case t.sampler == SamplerBaseline:
		return pruning.Decision{Reason: "the baseline runs to the end"}
	case t.repeatOf != nil:
		return pruning.Decision{Reason: "a repeat run of a front member runs to the end"}
	case s.c.Benchmarked() < s.spec.Sampler.StartupTrials:
		return pruning.Decision{Reason: fmt.Sprintf("%d of %d startup trials benchmarked", s.c.Benchmarked(), s.spec.Sampler.StartupTrials)}
	}
	front := s.PruneFront()
	if len(front) == 0 {
		return pruning.Decision{Reason: "no feasible front yet"}
	}
	return pruning.Decide(p, pruning.Objectives(&s.spec), front, obs, &s.es.cal)
}

// earlyStop is the study's early-stopping memory: the objective estimates
// each running trial reported at each checkpoint step, turned into the
// calibration's final/partial ratios when the trial completes.
type earlyStop struct {
	partial map[int]map[int][]float64 // trial -> step -> objective estimates
	cal     pruning.Calibration
}

func (e *earlyStop) measured(trialNumber int, obs pruning.Observation) {
	vals := make([]float64, len(obs.Objectives))
	for k, b := range obs.Objectives {
		vals[k] = b.Estimate
	}
	if e.partial == nil {
		e.partial = map[int]map[int][]float64{}
	}
	if e.partial[trialNumber] == nil {
		e.partial[trialNumber] = map[int][]float64{}
	}
	e.partial[trialNumber][obs.Step] = vals
}

// finished feeds a completed trial's measurements to the calibration (a
// pruned, failed or rejected one teaches it nothing: it has no final value).
func (e *earlyStop) finished(t *trial, o Outcome, dirs []study.Direction) {
	steps, ok := e.partial[t.number]
	if !ok {
		return
	}
	delete(e.partial, t.number)
	if o.Kind != Completed || len(t.ownY) == 0 {
		return
	}
	final := study.MinForm(t.ownY, dirs)
	for step, vals := range steps {
		e.cal.Add(step, vals, final)
	}
}
