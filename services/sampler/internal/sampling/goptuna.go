package sampling

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/c-bata/goptuna"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
)

// planSampler is the goptuna.Sampler of the study's goptuna record. The
// algorithms decide a whole configuration first (they need the history, the
// pending trials and duplicate checks, which goptuna's per-parameter Sample
// call cannot see), then the configuration is written into goptuna through
// the ordinary ask sequence (CreateNewTrial, SuggestCategorical per
// parameter), with this sampler answering each Suggest from the plan.
//
// goptuna's own RandomSampler is not used even for "random": in v0.9.0 it
// draws categorical values from the unseeded package-level math/rand, so a
// seeded study would not be reproducible.
type planSampler struct {
	codec *codec
	plan  map[int][]int // goptuna trial ID -> planned index vector
}

var _ goptuna.Sampler = (*planSampler)(nil)

func (p *planSampler) Sample(_ *goptuna.Study, trial goptuna.FrozenTrial, name string, _ interface{}) (float64, error) {
	x, ok := p.plan[trial.ID]
	if !ok {
		return 0, fmt.Errorf("goptuna trial %d has no planned configuration", trial.ID)
	}
	j, ok := p.codec.index[name]
	if !ok {
		return 0, fmt.Errorf("parameter %q is not in the search space", name)
	}
	return float64(x[j]), nil
}

// zlog adapts a zerolog.Logger to goptuna.Logger so goptuna never prints to
// stdout (its default StdLogger prints coloured debug lines there).
type zlog struct{ l zerolog.Logger }

var _ goptuna.Logger = zlog{}

func (z zlog) Debug(msg string, fields ...interface{}) { z.event(z.l.Debug(), msg, fields) }
func (z zlog) Info(msg string, fields ...interface{})  { z.event(z.l.Debug(), msg, fields) }
func (z zlog) Warn(msg string, fields ...interface{})  { z.event(z.l.Warn(), msg, fields) }
func (z zlog) Error(msg string, fields ...interface{}) { z.event(z.l.Error(), msg, fields) }

func (z zlog) event(e *zerolog.Event, msg string, fields []interface{}) {
	if e == nil {
		return
	}
	if len(fields) > 0 {
		strs := make([]string, len(fields))
		for i, f := range fields {
			strs[i] = fmt.Sprint(f)
		}
		e = e.Strs("goptuna_fields", strs)
	}
	e.Msg("goptuna: " + msg)
}

// newGoptunaStudy creates the in-memory goptuna study that records trials.
func newGoptunaStudy(name string, ps *planSampler, logger zerolog.Logger) (*goptuna.Study, error) {
	g, err := goptuna.CreateStudy(name,
		goptuna.StudyOptionStorage(goptuna.NewInMemoryStorage()),
		goptuna.StudyOptionSampler(ps),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMinimize),
		goptuna.StudyOptionLogger(zlog{l: logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("create goptuna study: %w", err)
	}
	return g, nil
}

// gAsk records a new running trial in goptuna with configuration x (nil: the
// parameters do not fit the space; only the system attributes record them)
// and returns its goptuna trial ID.
func (s *Study) gAsk(number int, x []int, params events.Params, sampler string) (int, error) {
	id, err := s.g.Storage.CreateNewTrial(s.g.ID)
	if err != nil {
		return -1, fmt.Errorf("goptuna create trial: %w", err)
	}
	if x != nil {
		s.plan.plan[id] = x
		t := goptuna.Trial{Study: s.g, ID: id}
		for j, name := range s.codec.names {
			if _, err := t.SuggestCategorical(name, s.codec.choices[j]); err != nil {
				delete(s.plan.plan, id)
				return -1, fmt.Errorf("goptuna suggest %s: %w", name, err)
			}
		}
		delete(s.plan.plan, id)
	}
	attrs := map[string]string{"number": strconv.Itoa(number), "sampler": sampler}
	if x == nil {
		b, _ := json.Marshal(params)
		attrs["params"] = string(b)
	}
	for k, v := range attrs {
		if err := s.g.Storage.SetTrialSystemAttr(id, k, v); err != nil {
			return -1, fmt.Errorf("goptuna set %s: %w", k, err)
		}
	}
	return id, nil
}

// gTell finishes trial t's goptuna record. goptuna refuses to update a
// finished trial (ErrTrialCannotBeUpdated): that is a repeated tell, and a
// no-op.
func (s *Study) gTell(t *trial, o Outcome) error {
	id := t.gid
	attrs := map[string]string{"outcome": o.Kind.String()}
	if o.FailureClass != "" {
		attrs["failure_class"] = o.FailureClass
	}
	if len(o.Rules) > 0 {
		b, _ := json.Marshal(o.Rules)
		attrs["rules"] = string(b)
	}
	if t.y != nil {
		b, _ := json.Marshal(t.y)
		attrs["objectives_min"] = string(b)
	}
	for k, v := range attrs {
		if err := s.g.Storage.SetTrialSystemAttr(id, k, v); err != nil {
			return gErr(err)
		}
	}
	state := goptuna.TrialStateFail
	if t.status == statusCompleted && t.y != nil {
		// goptuna keeps one value: the first objective in minimisation form.
		// The full vector is in the "objectives_min" attribute.
		if err := s.g.Storage.SetTrialValue(id, t.y[0]); err != nil {
			return gErr(err)
		}
		state = goptuna.TrialStateComplete
	}
	return gErr(s.g.Storage.SetTrialState(id, state))
}

func gErr(err error) error {
	if err == nil || errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
		return nil
	}
	return fmt.Errorf("goptuna tell: %w", err)
}
