package sampling

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/cmaes"
	"github.com/c-bata/goptuna/tpe"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/study"
)

// goptunaProposer runs one of goptuna's own samplers over the study's
// record: "tpe" (goptuna's TPE) and "cmaes" (goptuna's CMA-ES) for
// single-objective studies, and "scalarized-tpe", goptuna's TPE once per
// proposal on a random augmented-Chebyshev scalarisation of the objectives
// (ParEGO's scheme), for any number of objectives.
//
// goptuna is single-objective and knows nothing of constraints or trials in
// flight, so the samplers see the record through a viewStorage: the same
// trials (goptuna's storage, read for every proposal), with each trial's
// state and value as the algorithm needs them:
//
//   - TPE: a feasible result is COMPLETE with its (scalarised) value; an
//     infeasible trial (failed, rejected, SLO missed) and a pending one are
//     PRUNED without intermediate values, which goptuna's TPE always ranks
//     below every COMPLETE trial: infeasible trials count as bad, as with
//     Optuna's constraints, and a pending one is a constant liar, so a
//     batch spreads out.
//   - CMA-ES: every finished trial is COMPLETE, an infeasible one with a
//     penalty value worse than every feasible result, so a generation
//     fills up however many launches fail; parameters are the values'
//     indices mapped to [0, 1] (index i of K at (i+0.5)/K), so one step
//     size fits parameters of any number of values.
type goptunaProposer struct {
	algo  string
	store *viewStorage
	gs    *goptuna.Study
	tpe   *tpe.Sampler
	cma   *cmaes.Sampler
	rng   *rand.Rand
	dists []any // per parameter: what TPE samples
	// last is the configuration last proposed and version the history's
	// version then; avoid are the configurations the study asked again
	// for at this version (a duplicate or a known failure), shown to TPE
	// as bad trials so it moves on: with at most 24 choices goptuna's TPE
	// scores every choice, so the same history gives the same proposal.
	last    []int
	version int
	avoid   [][]int
}

// draftID is the goptuna trial ID of the trial being proposed: goptuna's
// samplers see it before the study records it.
const draftID = -1

func newGoptunaProposer(algo string, h *history, seed int64, logger zerolog.Logger) (*goptunaProposer, error) {
	p := &goptunaProposer{algo: algo, store: &viewStorage{Storage: h.g.Storage, id: h.g.ID},
		rng: rand.New(rand.NewPCG(uint64(seed), 0x6770_7475))} // "gptu"
	gs, err := goptuna.CreateStudy(h.spec.StudyName,
		goptuna.StudyOptionStorage(p.store),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMinimize),
		goptuna.StudyOptionLogger(zlog{l: logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("goptuna view study: %w", err)
	}
	p.gs = gs
	for j := range h.codec.names {
		p.dists = append(p.dists, tpeDistribution(h.codec, j))
	}
	switch algo {
	case study.AlgoCMAES:
		mean := map[string]float64{}
		base := h.codec.baseline()
		for j, name := range h.codec.names {
			if k := len(h.codec.values[j]); k > 1 {
				mean[name] = (float64(base[j]) + 0.5) / float64(k)
			}
		}
		p.cma = cmaes.NewSampler(cmaes.SamplerOptionSeed(seed), cmaes.SamplerOptionInitialMean(mean))
	case study.AlgoScalarizedTPE:
		// A scalarisation changes with every proposal, so its "good" set is
		// noisier than a single objective's: a fifth of the trials (goptuna's
		// default is a tenth).
		p.tpe = tpe.NewSampler(tpe.SamplerOptionSeed(seed), tpe.SamplerOptionNumberOfStartupTrials(0),
			tpe.SamplerOptionGammaFunc(func(n int) int { return min(25, int(math.Ceil(0.2*float64(n)))) }))
	default:
		p.tpe = tpe.NewSampler(tpe.SamplerOptionSeed(seed), tpe.SamplerOptionNumberOfStartupTrials(0))
	}
	gs.Sampler = p.tpe
	return p, nil
}

// tpeDistribution is parameter j's distribution for goptuna's TPE: an
// integer distribution over the indices when its values are numbers listed
// in increasing order (TPE's Parzen estimator then carries what it saw at
// tp 4 to tp 8), else categorical.
//
// goptuna's TPE draws numeric values with the package-level math/rand,
// which Go seeds at random: studies with tpe and scalarized-tpe are not
// reproducible bit for bit (the others are). For a categorical parameter
// of up to 24 choices it scores every choice and draws nothing.
func tpeDistribution(c *codec, j int) any {
	vals := c.values[j]
	ordered := len(vals) >= 3
	prev := math.Inf(-1)
	for _, v := range vals {
		var f float64
		switch x := v.(type) {
		case int:
			f = float64(x)
		case float64:
			f = x
		default:
			ordered = false
		}
		if !ordered || f <= prev {
			ordered = false
			break
		}
		prev = f
	}
	if ordered {
		return goptuna.IntUniformDistribution{Low: 0, High: len(vals) - 1}
	}
	return goptuna.CategoricalDistribution{Choices: c.choices[j]}
}

func (p *goptunaProposer) propose(v *view) ([]int, string, map[string]string) {
	if v.inStartup() {
		return v.startupDraw(), SamplerStartup, nil
	}
	values, ok := p.values(v)
	if !ok {
		return nil, "", nil
	}
	if p.version != v.version {
		p.version, p.avoid = v.version, nil
	} else if p.last != nil {
		p.avoid = append(p.avoid, p.last)
	}
	cmaMode := p.algo == study.AlgoCMAES
	if err := p.store.load(v, values, cmaMode, p.dists, p.avoid); err != nil {
		return nil, "", nil
	}
	draft := goptuna.FrozenTrial{ID: draftID, Number: len(v.all), State: goptuna.TrialStateRunning,
		InternalParams: map[string]float64{}, Params: map[string]any{}, Distributions: map[string]any{},
		SystemAttrs: map[string]string{}, UserAttrs: map[string]string{}}
	x := make([]int, v.codec.dims())
	if cmaMode {
		space := map[string]any{}
		for j, name := range v.codec.names {
			if len(v.codec.values[j]) > 1 {
				space[name] = goptuna.UniformDistribution{Low: 0, High: 1}
			}
		}
		if len(space) < 2 {
			return nil, "", nil
		}
		params, err := p.cma.SampleRelative(p.gs, draft, space)
		if err != nil || params == nil {
			return nil, "", nil
		}
		for j, name := range v.codec.names {
			k := len(v.codec.values[j])
			if u, ok := params[name]; ok {
				x[j] = min(k-1, max(0, int(math.Floor(u*float64(k)))))
			}
		}
		p.last = x
		return x, p.algo, p.store.takeDraftAttrs()
	}
	for j, name := range v.codec.names {
		f, err := p.tpe.Sample(p.gs, draft, name, p.dists[j])
		if err != nil {
			return nil, "", nil
		}
		x[j] = min(len(v.codec.values[j])-1, max(0, int(math.Round(f))))
	}
	p.last = x
	return x, p.algo, nil
}

// values computes the value each feasible trial has for this proposal:
// its single objective, or for scalarized-tpe a random augmented
// Chebyshev scalarisation of its normalised objectives. ok is false when
// no trial is feasible.
func (p *goptunaProposer) values(v *view) (map[*trial]float64, bool) {
	var feas []*trial
	for _, t := range v.trials {
		if t.feasible && t.x != nil && len(t.y) > 0 {
			feas = append(feas, t)
		}
	}
	if len(feas) == 0 {
		return nil, false
	}
	out := make(map[*trial]float64, len(feas))
	if p.algo != study.AlgoScalarizedTPE {
		for _, t := range feas {
			out[t] = t.y[0]
		}
		return out, true
	}
	m := len(feas[0].y)
	lo, hi := make([]float64, m), make([]float64, m)
	for k := range m {
		lo[k], hi[k] = math.Inf(1), math.Inf(-1)
		for _, t := range feas {
			lo[k], hi[k] = math.Min(lo[k], t.y[k]), math.Max(hi[k], t.y[k])
		}
	}
	w := make([]float64, m)
	sum := 0.0
	for k := range w {
		w[k] = -math.Log(1 - p.rng.Float64()) // Dirichlet(1, ..., 1)
		sum += w[k]
	}
	for _, t := range feas {
		worst, total := math.Inf(-1), 0.0
		for k := range m {
			f := 0.0
			if hi[k] > lo[k] {
				f = (t.y[k] - lo[k]) / (hi[k] - lo[k])
			}
			f *= w[k] / sum
			worst = math.Max(worst, f)
			total += f
		}
		out[t] = worst + augmentation*total
	}
	return out, true
}

// augmentation weighs the sum in the augmented Chebyshev scalarisation
// (ParEGO's 0.05), so weakly dominated points rank below their dominators.
const augmentation = 0.05

// viewStorage is goptuna's storage as one of goptuna's samplers sees it
// for one proposal (see goptunaProposer): every call goes to the study's
// storage except the trial list, which is loaded from it and rewritten,
// and the attributes a sampler sets on the draft trial, which are kept
// for the study to record with the proposal.
type viewStorage struct {
	goptuna.Storage
	id     int
	trials []goptuna.FrozenTrial
	draft  map[string]string
}

// CreateNewStudy returns the study's own ID: the view adds no study.
func (s *viewStorage) CreateNewStudy(string) (int, error) { return s.id, nil }

// SetStudyDirection does nothing: the record's direction stays.
func (s *viewStorage) SetStudyDirection(int, goptuna.StudyDirection) error { return nil }

// GetAllTrials returns the trials as loaded for this proposal.
func (s *viewStorage) GetAllTrials(int) ([]goptuna.FrozenTrial, error) { return s.trials, nil }

// SetTrialSystemAttr keeps the draft trial's attributes; others go to the record.
func (s *viewStorage) SetTrialSystemAttr(id int, key, value string) error {
	if id == draftID {
		if s.draft == nil {
			s.draft = map[string]string{}
		}
		s.draft[key] = value
		return nil
	}
	return s.Storage.SetTrialSystemAttr(id, key, value)
}

func (s *viewStorage) takeDraftAttrs() map[string]string {
	d := s.draft
	s.draft = nil
	return d
}

// load reads the record's trials from goptuna's storage and rewrites them
// for a TPE or (cma) CMA-ES proposal; values holds the feasible trials'
// values; avoid are configurations shown to TPE as extra bad trials.
func (s *viewStorage) load(v *view, values map[*trial]float64, cma bool, dists []any, avoid [][]int) error {
	fts, err := s.Storage.GetAllTrials(s.id)
	if err != nil {
		return err
	}
	byGID := make(map[int]*trial, len(v.trials))
	for _, t := range v.trials {
		byGID[t.gid] = t
	}
	worst, best := math.Inf(-1), math.Inf(1)
	for _, val := range values {
		worst, best = math.Max(worst, val), math.Min(best, val)
	}
	penalty := worst + math.Max(worst-best, 1e-9)
	out := make([]goptuna.FrozenTrial, 0, len(fts))
	for _, ft := range fts {
		t, ok := byGID[ft.ID]
		if !ok || t.x == nil {
			continue // hidden (Options.IgnoreInvalid) or outside the space
		}
		val, feasible := values[t]
		switch {
		case cma && t.status == statusPending:
			ft.State = goptuna.TrialStateRunning
		case cma:
			ft.State, ft.Value = goptuna.TrialStateComplete, val
			if !feasible {
				ft.Value = penalty + t.violation
			}
		case feasible:
			ft.State, ft.Value = goptuna.TrialStateComplete, val
		default:
			ft.State, ft.IntermediateValues = goptuna.TrialStatePruned, nil
		}
		ip := make(map[string]float64, len(v.codec.names))
		ds := make(map[string]any, len(v.codec.names))
		for j, name := range v.codec.names {
			k := len(v.codec.values[j])
			if cma {
				ip[name] = (float64(t.x[j]) + 0.5) / float64(k)
				ds[name] = goptuna.UniformDistribution{Low: 0, High: 1}
			} else {
				ip[name] = float64(t.x[j])
				ds[name] = dists[j]
			}
		}
		ft.InternalParams, ft.Distributions = ip, ds
		out = append(out, ft)
	}
	if !cma {
		for i, x := range avoid {
			ft := goptuna.FrozenTrial{ID: -2 - i, State: goptuna.TrialStatePruned,
				InternalParams: make(map[string]float64, len(x)), Distributions: make(map[string]any, len(x))}
			for j, name := range v.codec.names {
				ft.InternalParams[name], ft.Distributions[name] = float64(x[j]), dists[j]
			}
			out = append(out, ft)
		}
	}
	s.trials = out
	return nil
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
