package sampling

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Algorithm names.
const (
	AlgoMOTPE  = "motpe"
	AlgoNSGA2  = "nsga2"
	AlgoRandom = "random"
	// SamplerBaseline names the proposal of SGLang's defaults (trial 0).
	SamplerBaseline = "baseline"
	// SamplerRepeat names a repeat run of a front member.
	SamplerRepeat = "repeat"
)

// Stop reasons reported by Done.
const (
	StopNTrials       = "n_trials reached"
	StopTimeBudget    = "time budget"
	StopPlateau       = "plateau"
	StopExhausted     = "search space exhausted"
	StopProposalLimit = "proposal limit"
)

// Kind is what became of a proposed trial.
type Kind int

// Outcome kinds.
const (
	// Completed: the trial ran and measured its metrics.
	Completed Kind = iota + 1
	// Failed: the server or benchmark failed (oom, crash, timeout, ...): a
	// result about the config, which is infeasible.
	Failed
	// Rejected: the validator refused the config (Rules name the rules).
	Rejected
	// Duplicate: the validator found the config's canonical form already ran.
	Duplicate
)

func (k Kind) String() string {
	switch k {
	case Completed:
		return "completed"
	case Failed:
		return "failed"
	case Rejected:
		return "rejected"
	case Duplicate:
		return "duplicate"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Proposal is one proposed trial.
type Proposal struct {
	// Trial is the trial number the study minted.
	Trial int
	// Params is the configuration, typed as the spec's values.
	Params events.Params
	// Sampler names what produced it: "baseline", "random", "motpe", "nsga2",
	// "repeat".
	Sampler string
	// RepeatOf, when set, marks a repeat run of that earlier trial (same
	// params, spec.Sampler.Repeats): its result is folded into the earlier
	// trial's, and the validator lets the duplicate through.
	RepeatOf *int
}

// Outcome is what became of a trial.
type Outcome struct {
	Trial int
	Kind  Kind
	// Metrics of a completed trial (result metric name -> value).
	Metrics map[string]float64
	// FailureClass of a failed trial (events.Fail*).
	FailureClass string
	// FailureCause tells failures of one class apart: the exception line of
	// the server's log (see FailureCause), "" when unknown. Failures with
	// one cause usually share a few parameters (two-batch overlap on a
	// dense model; fa4 as the decode backend), so the feasibility model
	// learns each cause on its own.
	FailureCause string
	// Rules names the validation rules a rejected trial failed.
	Rules []string
	// Params, when set, lets the study adopt an outcome of a trial it has no
	// proposal for (a record lost from the candidates stream).
	Params events.Params
}

// Counters summarise a study.
type Counters struct {
	// Proposed counts trial numbers used.
	Proposed int
	// InFlight counts proposals without an outcome.
	InFlight int
	// Completed and Failed count results; together they are the benchmarked trials.
	Completed int
	Failed    int
	// Rejected counts validator rejections, duplicates included; Duplicates only those.
	Rejected   int
	Duplicates int
	// Infeasible counts completed trials that missed an SLO.
	Infeasible int
}

// Benchmarked is the number of trials that ran: completed plus failed. Only
// these use up the n_trials budget.
func (c Counters) Benchmarked() int { return c.Completed + c.Failed }

// Options adjust a study beyond its spec. The zero value takes everything from the spec.
type Options struct {
	// Algorithm overrides spec.Sampler.Algorithm ("motpe", "nsga2", "random").
	Algorithm string
	// NTrials overrides spec.NTrials (0: the spec's).
	NTrials int
	// Seed overrides spec.Sampler.Seed when non-nil.
	Seed *int64
	// StartedAt is when the study started, for spec.TimeBudget. Zero: the
	// first call to Done starts the clock.
	StartedAt time.Time
	// Logger receives goptuna's log lines (zero value: discarded).
	Logger zerolog.Logger
	// Candidates is how many candidates MOTPE draws from the good model per
	// proposal; default 64.
	Candidates int
	// MaxProposals bounds proposals (rejections included) so a study whose
	// every candidate is rejected still ends; 0: 20 × n_trials + 100.
	MaxProposals int
	// Acquisition chooses how "motpe" scores candidates: AcqEHVI (default: a
	// Gaussian-process surrogate and expected hypervolume improvement, with
	// a learned feasibility model) or AcqTPE (MOTPE's density ratio alone).
	Acquisition string
	// IgnoreInvalid hides rejected, duplicate and failed trials from the
	// algorithm, as the seed tuner did by marking them pruned (Optuna's
	// samplers learn nothing from pruned trials). They are still counted and
	// never proposed again. For the benchmark's "as the seed ran it"
	// baseline only: a real study learns from every outcome.
	IgnoreInvalid bool
}

// status of a trial record.
type status int

const (
	statusPending status = iota
	statusCompleted
	statusFailed
	statusRejected
	statusDuplicate
)

// trial is the study's record of one trial.
type trial struct {
	number  int
	gid     int   // goptuna trial ID
	x       []int // index vector; nil when the params do not fit the space
	key     string
	sampler string
	status  status
	// y are the objective values in minimisation form (maximised ones
	// negated); nil unless completed with every objective measured.
	y []float64
	// feasible: completed, every objective measured, no SLO missed.
	feasible bool
	// violation orders infeasible trials for NSGA-II (0 when feasible).
	violation float64
	// benchSeq is the order of the outcome among benchmarked trials (-1 otherwise).
	benchSeq int
	// rules a rejection named; failClass of a failure.
	rules     []string
	failClass string
	failCause string
	// Repeats (spec.Sampler.Repeats): repeatOf links a repeat run to its
	// original; an original lists its repeat runs and keeps its own
	// measurement in ownY/ownFeasible, while y and feasible hold the
	// aggregate over every finished run (see aggregate).
	repeatOf    *trial
	repeats     []*trial
	ownY        []float64
	ownFeasible bool
}

// Study is a tuning study's sampler state. Build it with NewStudy.
type Study struct {
	spec      study.Spec
	algo      string
	nTrials   int
	maxProps  int
	startedAt time.Time
	rng       *rand.Rand
	codec     *codec
	g         *goptuna.Study
	plan      *planSampler
	ncand     int
	ignoreInv bool
	acq       string
	feas      *feasibility
	gpTheta   [][]float64 // per objective: the last fitted relevance weights
	gpNoise   []float64
	gpFitN    int // training-set size at the last hyperparameter search

	trials   []*trial // in proposal (record) order
	byNumber map[int]*trial
	seen     map[string]int // config key -> trial number
	next     int            // next trial number
	bench    []*trial       // benchmarked trials in outcome order
	c        Counters
	exhaust  bool
}

// NewStudy builds an empty study for spec (validated by the caller).
func NewStudy(spec study.Spec, opts Options) (*Study, error) {
	algo := spec.Sampler.Algorithm
	if opts.Algorithm != "" {
		algo = opts.Algorithm
	}
	if algo == "" {
		algo = AlgoMOTPE
	}
	switch algo {
	case AlgoMOTPE, AlgoNSGA2, AlgoRandom:
	default:
		return nil, fmt.Errorf("%w: %q (known: motpe, nsga2, random)", ErrUnknownAlgorithm, algo)
	}
	if len(spec.Objectives) == 0 {
		return nil, errors.New("spec has no objectives")
	}
	cd, err := newCodec(spec.Space)
	if err != nil {
		return nil, err
	}
	n := spec.NTrials
	if opts.NTrials > 0 {
		n = opts.NTrials
	}
	if n < 1 {
		return nil, fmt.Errorf("n_trials must be at least 1, got %d", n)
	}
	seed := spec.Sampler.Seed
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	maxProps := opts.MaxProposals
	if maxProps <= 0 {
		maxProps = 20*n + 100
	}
	ncand := opts.Candidates
	if ncand <= 0 {
		ncand = 64
	}
	acq := opts.Acquisition
	if acq == "" {
		acq = spec.Sampler.Acquisition
	}
	switch acq {
	case "":
		acq = AcqEHVI
	case AcqEHVI, AcqTPE:
	default:
		return nil, fmt.Errorf("%w: acquisition %q (known: ehvi, tpe)", ErrUnknownAlgorithm, acq)
	}
	ps := &planSampler{codec: cd, plan: map[int][]int{}}
	g, err := newGoptunaStudy(spec.StudyName, ps, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Study{
		spec:      spec,
		algo:      algo,
		nTrials:   n,
		maxProps:  maxProps,
		startedAt: opts.StartedAt,
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x5367_7475_6e65)), // "Sgtune"
		codec:     cd,
		g:         g,
		plan:      ps,
		ncand:     ncand,
		ignoreInv: opts.IgnoreInvalid,
		acq:       acq,
		feas:      newFeasibility(cd),
		gpTheta:   make([][]float64, len(spec.Objectives)),
		gpNoise:   make([]float64, len(spec.Objectives)),
		byNumber:  map[int]*trial{},
		seen:      map[string]int{},
	}, nil
}

// Algorithm is the algorithm in use.
func (s *Study) Algorithm() string { return s.algo }

// NTrials is the budget of benchmarked trials.
func (s *Study) NTrials() int { return s.nTrials }

// Counters returns the study's counters.
func (s *Study) Counters() Counters { return s.c }

// NextTrial is the number the next proposal will get.
func (s *Study) NextTrial() int { return s.next }

// Room is how many trials may be proposed now so that no more than capacity
// are in flight and the in-flight trials cannot overrun the n_trials budget
// even if none of them is rejected.
func (s *Study) Room(capacity int) int {
	return max(0, min(capacity-s.c.InFlight, s.nTrials-s.c.Benchmarked()-s.c.InFlight))
}

// Propose mints the next n trial numbers and proposes a configuration for
// each; the batch is diverse because each proposal is made with the earlier
// ones (and every other trial in flight) already recorded as pending, which
// the algorithms treat pessimistically (constant liar), and no configuration
// is ever proposed twice. It may return fewer than n proposals when the
// space runs out (ErrSpaceExhausted when it returns none) or the proposal
// limit is reached.
func (s *Study) Propose(n int) ([]Proposal, error) {
	var out []Proposal
	for range n {
		if s.c.Proposed >= s.maxProps {
			break
		}
		if orig := s.nextRepeat(); orig != nil {
			params := s.codec.decode(orig.x)
			t, err := s.record(s.next, orig.x, orig.key, params, SamplerRepeat)
			if err != nil {
				return out, err
			}
			s.linkRepeat(t, orig)
			n := orig.number
			out = append(out, Proposal{Trial: t.number, Params: params, Sampler: SamplerRepeat, RepeatOf: &n})
			continue
		}
		x, name, err := s.proposeOne()
		if errors.Is(err, ErrSpaceExhausted) {
			s.exhaust = true
			if len(out) == 0 {
				return nil, err
			}
			break
		}
		if err != nil {
			return out, err
		}
		params := s.codec.decode(x)
		t, err := s.record(s.next, x, keyOf(x), params, name)
		if err != nil {
			return out, err
		}
		out = append(out, Proposal{Trial: t.number, Params: params, Sampler: name})
	}
	return out, nil
}

// maxResample bounds how often an algorithm is asked again after proposing a
// configuration that was proposed before.
const maxResample = 16

// proposeOne picks a configuration that was never proposed.
func (s *Study) proposeOne() ([]int, string, error) {
	if s.spec.Sampler.BaselineEnabled() && len(s.trials) == 0 {
		return s.codec.baseline(), SamplerBaseline, nil
	}
	for range maxResample {
		x, name := s.sample()
		if _, dup := s.seen[keyOf(x)]; !dup {
			return x, name, nil
		}
	}
	for range 4 * maxResample {
		x := s.codec.random(s.rng)
		if _, dup := s.seen[keyOf(x)]; !dup {
			return x, AlgoRandom, nil
		}
	}
	// Nearly everything was proposed: scan the space from a random start.
	if float64(len(s.seen)) >= s.codec.size() {
		return nil, "", ErrSpaceExhausted
	}
	x := s.codec.random(s.rng)
	for range 1 << 22 {
		s.codec.next(x)
		if _, dup := s.seen[keyOf(x)]; !dup {
			return x, AlgoRandom, nil
		}
	}
	return nil, "", ErrSpaceExhausted
}

// sample asks the study's algorithm for one configuration.
func (s *Study) sample() ([]int, string) {
	switch s.algo {
	case AlgoNSGA2:
		if x := s.nsga2Sample(); x != nil {
			return x, AlgoNSGA2
		}
	case AlgoMOTPE:
		x := s.bayesSample
		if s.acq == AcqTPE {
			x = s.motpeSample
		}
		if x := x(); x != nil {
			return x, AlgoMOTPE
		}
	}
	return s.codec.random(s.rng), AlgoRandom
}

// visible returns the trials the algorithm learns from: every trial, or
// with Options.IgnoreInvalid all but the rejected, duplicate and failed ones.
//
// Repeat runs are never visible on their own: their results are folded
// into the original trial's (aggregate).
func (s *Study) visible() []*trial {
	if !s.ignoreInv && s.spec.Sampler.Repeats <= 0 {
		return s.trials
	}
	out := make([]*trial, 0, len(s.trials))
	for _, t := range s.trials {
		if t.repeatOf != nil {
			continue
		}
		if s.ignoreInv {
			switch t.status {
			case statusRejected, statusDuplicate, statusFailed:
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// record registers a pending trial and its goptuna record.
func (s *Study) record(number int, x []int, key string, params events.Params, sampler string) (*trial, error) {
	gid, err := s.gAsk(number, x, params, sampler)
	if err != nil {
		return nil, err
	}
	t := &trial{number: number, gid: gid, x: x, key: key, sampler: sampler, benchSeq: -1}
	s.trials = append(s.trials, t)
	s.byNumber[number] = t
	if _, dup := s.seen[key]; !dup {
		s.seen[key] = number
	}
	s.next = max(s.next, number+1)
	s.c.Proposed++
	s.c.InFlight++
	return t, nil
}

// adopt records a proposal that arrived from elsewhere (a restart, or an
// outcome whose proposal is missing); its params may not fit the space.
func (s *Study) adopt(p Proposal) error {
	if _, known := s.byNumber[p.Trial]; known {
		return nil
	}
	if p.Trial < 0 {
		return fmt.Errorf("trial number %d: must not be negative", p.Trial)
	}
	x, ok := s.codec.encode(p.Params)
	key := paramsKey(p.Params)
	if ok {
		key = keyOf(x)
	} else {
		x = nil
	}
	t, err := s.record(p.Trial, x, key, p.Params, p.Sampler)
	if err != nil {
		return err
	}
	if p.RepeatOf != nil {
		if orig, ok := s.byNumber[*p.RepeatOf]; ok && orig.repeatOf == nil && orig != t {
			s.linkRepeat(t, orig)
		}
	}
	return nil
}

// Restore rebuilds the study from its record: every proposal made so far
// and every outcome received. Numbering continues after the largest trial
// number; a trial number seen twice is recorded once; outcomes are told in
// the order given (their tells are idempotent). It may be called on a fresh
// study or again with more records.
func (s *Study) Restore(proposals []Proposal, outcomes []Outcome) error {
	ps := make([]Proposal, len(proposals))
	copy(ps, proposals)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Trial < ps[j].Trial })
	for _, p := range ps {
		if err := s.adopt(p); err != nil {
			return fmt.Errorf("restore trial %d: %w", p.Trial, err)
		}
	}
	var errs []error
	for _, o := range outcomes {
		if err := s.Tell(o); err != nil {
			errs = append(errs, fmt.Errorf("restore outcome of trial %d: %w", o.Trial, err))
		}
	}
	return errors.Join(errs...)
}

// Tell records a trial's outcome. A second tell for the same trial is a
// no-op (the first outcome stands). An outcome of an unknown trial is
// adopted when it carries its params, else ErrUnknownTrial.
func (s *Study) Tell(o Outcome) error {
	if o.Kind < Completed || o.Kind > Duplicate {
		return fmt.Errorf("%w: trial %d has kind %d", ErrBadOutcome, o.Trial, int(o.Kind))
	}
	t, ok := s.byNumber[o.Trial]
	if !ok {
		if o.Params == nil {
			return fmt.Errorf("%w: %d", ErrUnknownTrial, o.Trial)
		}
		if err := s.adopt(Proposal{Trial: o.Trial, Params: o.Params, Sampler: "unknown"}); err != nil {
			return err
		}
		t = s.byNumber[o.Trial]
	}
	if t.status != statusPending {
		return nil
	}
	s.c.InFlight--
	t.rules, t.failClass, t.failCause = o.Rules, o.FailureClass, o.FailureCause
	switch o.Kind {
	case Completed:
		t.status = statusCompleted
		s.c.Completed++
		if vals, ok := s.spec.ObjectiveValues(o.Metrics); ok {
			t.ownY = toMinForm(vals, s.spec.Directions())
		}
		viol := s.spec.Violations(o.Metrics)
		t.ownFeasible = t.ownY != nil && len(viol) == 0 && allFinite(t.ownY)
		t.y, t.feasible = t.ownY, t.ownFeasible
		if !t.ownFeasible {
			s.c.Infeasible++
			t.violation = float64(max(1, len(viol)))
		}
	case Failed:
		t.status = statusFailed
		s.c.Failed++
		t.violation = 1
	case Rejected:
		t.status = statusRejected
		s.c.Rejected++
		t.violation = float64(max(1, len(o.Rules)))
	case Duplicate:
		t.status = statusDuplicate
		s.c.Rejected++
		s.c.Duplicates++
		t.violation = 1
	}
	if t.status == statusCompleted || t.status == statusFailed {
		t.benchSeq = len(s.bench)
		s.bench = append(s.bench, t)
	}
	err := s.gTell(t, o)
	switch {
	case t.repeatOf != nil:
		s.aggregate(t.repeatOf)
	case len(t.repeats) > 0:
		s.aggregate(t)
	}
	return err
}

// linkRepeat makes t a repeat run of orig.
func (s *Study) linkRepeat(t, orig *trial) {
	t.repeatOf = orig
	orig.repeats = append(orig.repeats, t)
}

// aggregate folds an original trial's finished repeat runs into its
// values: the mean of every run's objectives, and feasible only while
// every finished run completed feasibly (a front member that fails or
// misses an SLO on repeat does not hold up, and drops off the front).
// A repeat run is never a point of its own.
func (s *Study) aggregate(orig *trial) {
	for _, r := range orig.repeats {
		r.y, r.feasible = nil, false
	}
	if orig.status != statusCompleted {
		return
	}
	runs := [][]float64{}
	ok := orig.ownFeasible
	if orig.ownFeasible {
		runs = append(runs, orig.ownY)
	}
	for _, r := range orig.repeats {
		switch r.status {
		case statusCompleted:
			if r.ownFeasible {
				runs = append(runs, r.ownY)
			} else {
				ok = false
			}
		case statusFailed:
			ok = false
		}
	}
	orig.feasible = ok
	if len(runs) == 0 {
		orig.y = orig.ownY
		return
	}
	mean := make([]float64, len(runs[0]))
	for _, y := range runs {
		for k, v := range y {
			mean[k] += v / float64(len(runs))
		}
	}
	orig.y = mean
}

// nextRepeat returns the front member that should be run again next
// (spec.Sampler.Repeats), or nil: the lowest-numbered feasible original on
// the current front with fewer repeat runs (finished or in flight) than
// asked for.
func (s *Study) nextRepeat() *trial {
	r := s.spec.Sampler.Repeats
	if r <= 0 {
		return nil
	}
	var cands []*trial
	var pts [][]float64
	for _, t := range s.trials {
		if t.feasible && t.repeatOf == nil && t.x != nil {
			cands = append(cands, t)
			pts = append(pts, t.y)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	var best *trial
	for _, i := range study.ParetoFront(pts, minDirs(len(pts[0]))) {
		t := cands[i]
		if len(t.repeats) < r && (best == nil || t.number < best.number) {
			best = t
		}
	}
	return best
}

// Done reports whether the study should stop proposing, and why: the
// n_trials budget of benchmarked trials is used up (rejections and
// duplicates do not count), the spec's time budget has passed, the
// hypervolume has reached a plateau, the search space is exhausted, or the
// proposal limit is reached.
func (s *Study) Done(now time.Time) (bool, string) {
	if s.startedAt.IsZero() {
		s.startedAt = now
	}
	switch {
	case s.c.Benchmarked() >= s.nTrials:
		return true, StopNTrials
	case s.spec.TimeBudget > 0 && now.Sub(s.startedAt) >= s.spec.TimeBudget.D():
		return true, StopTimeBudget
	case s.plateau():
		return true, StopPlateau
	case s.exhaust:
		return true, StopExhausted
	case s.c.Proposed >= s.maxProps:
		return true, StopProposalLimit
	}
	return false, ""
}

// Hypervolume is the hypervolume of the feasible results' front in the
// spec's raw objective space, against reference point ref (one value per
// objective, in the objectives' own units and directions).
func (s *Study) Hypervolume(ref []float64) float64 {
	var pts [][]float64
	for _, t := range s.bench {
		if t.feasible {
			pts = append(pts, fromMinForm(t.y, s.spec.Directions()))
		}
	}
	return study.Hypervolume(pts, s.spec.Directions(), ref)
}

func toMinForm(v []float64, dirs []study.Direction) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i]
		if dirs[i] == study.Maximize {
			out[i] = -v[i]
		}
	}
	return out
}

func fromMinForm(v []float64, dirs []study.Direction) []float64 { return toMinForm(v, dirs) }

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// FrontSize is the number of feasible results on the Pareto front.
func (s *Study) FrontSize() int {
	var pts [][]float64
	for _, t := range s.bench {
		if t.feasible {
			pts = append(pts, t.y)
		}
	}
	if len(pts) == 0 {
		return 0
	}
	return len(study.ParetoFront(pts, minDirs(len(pts[0]))))
}
