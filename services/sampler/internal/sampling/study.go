package sampling

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Names of proposals that no algorithm made.
const (
	// SamplerBaseline names the proposal of SGLang's defaults (trial 0).
	SamplerBaseline = "baseline"
	// SamplerRepeat names a repeat run of a front member.
	SamplerRepeat = "repeat"
	// SamplerWarmStart names a proposal of a finished study's best
	// configuration (spec sampler.warm_start).
	SamplerWarmStart = "warm-start"
	// SamplerStartup names a startup draw (SGLang's defaults with half the
	// parameters at random) made before a model-based algorithm has data.
	SamplerStartup = "startup"
)

// Stop reasons reported by Done.
const (
	StopNTrials       = "n_trials reached"
	StopTimeBudget    = "time budget"
	StopPlateau       = "plateau"
	StopExhausted     = "search space exhausted"
	StopProposalLimit = "proposal limit"
	StopGPUHours      = "gpu_hours budget"
)

// Options adjust a study beyond its spec. The zero value takes everything from the spec.
type Options struct {
	// Algorithm overrides the spec's algorithm (study.Algorithms).
	Algorithm string
	// NTrials overrides spec.NTrials (0: the spec's).
	NTrials int
	// Seed overrides spec.Sampler.Seed when non-nil.
	Seed *int64
	// StartedAt is when the study started, for spec.TimeBudget. Zero: the
	// first call to Done starts the clock.
	StartedAt time.Time
	// Logger receives goptuna's log lines and deprecation notes (zero
	// value: discarded).
	Logger zerolog.Logger
	// MaxProposals bounds proposals (rejections included) so a study whose
	// every candidate is rejected still ends; 0: 20 × n_trials + 100.
	MaxProposals int
	// IgnoreInvalid hides rejected, duplicate and failed trials from the
	// algorithm, as the seed tuner did by marking them pruned (Optuna's
	// samplers learn nothing from pruned trials). They are still counted and
	// never proposed again. For the benchmark's "as the seed ran it"
	// baseline only: a real study learns from every outcome.
	IgnoreInvalid bool
	// Prior is what finished studies learned (spec sampler.warm_start),
	// read by the adapter; nil: none.
	Prior *Prior
}

// Study is a tuning study's sampler state. Build it with NewStudy.
//
// It keeps the record (history, in goptuna's study), the trial numbering
// and the counters; the algorithm (a proposer) owns its own state and reads
// the record through a view. A Study is not safe for concurrent use.
type Study struct {
	spec      study.Spec
	algo      string
	nTrials   int
	maxProps  int
	startedAt time.Time
	rng       *rand.Rand
	codec     *codec
	h         *history
	feas      *feasibility
	prop      proposer
	ignoreInv bool
	// screen: retry a proposal the feasibility model is sure fails for a
	// cause seen before (every learning algorithm; not random search).
	screen bool
	prior  *Prior

	next     int
	c        Counters
	exhaust  bool
	askedAt  map[int]int    // trial number -> outcomes told when it was proposed
	causeAt  map[string]int // failure key -> outcomes told when it was first seen
	deprecat string
	// early stopping (prune.go): what running trials measured, and what
	// finished ones teach about partial measurements.
	es earlyStop
}

// NewStudy builds an empty study for spec (validated by the caller).
func NewStudy(spec study.Spec, opts Options) (*Study, error) {
	algo, note, err := study.ResolveAlgorithm(spec.Sampler.Algorithm, spec.Sampler.Acquisition, len(spec.Objectives))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownAlgorithm, err)
	}
	if opts.Algorithm != "" {
		if algo, _, err = study.ResolveAlgorithm(opts.Algorithm, "", len(spec.Objectives)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownAlgorithm, err)
		}
		note = ""
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
	s := &Study{
		spec:      spec,
		algo:      algo,
		nTrials:   n,
		maxProps:  maxProps,
		startedAt: opts.StartedAt,
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x5367_7475_6e65)), // "Sgtune"
		codec:     cd,
		feas:      newFeasibility(cd),
		ignoreInv: opts.IgnoreInvalid,
		screen:    algo != study.AlgoRandom && !opts.IgnoreInvalid,
		askedAt:   map[int]int{},
		causeAt:   map[string]int{},
		deprecat:  note,
		prior:     opts.Prior,
	}
	if s.h, err = newHistory(&s.spec, cd, opts.Logger); err != nil {
		return nil, err
	}
	if s.prop, err = newProposer(algo, s, seed, opts.Logger); err != nil {
		return nil, err
	}
	if opts.Prior != nil {
		if err := s.applyPrior(opts.Prior); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Algorithm is the algorithm in use.
func (s *Study) Algorithm() string { return s.algo }

// Deprecation is the deprecation note of the spec's spelling of its
// algorithm ("" when none), for the caller to log.
func (s *Study) Deprecation() string { return s.deprecat }

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
// the algorithms account for, and no configuration is ever proposed twice.
// It may return fewer than n proposals when the space runs out
// (ErrSpaceExhausted when it returns none) or the proposal limit is reached.
func (s *Study) Propose(n int) ([]Proposal, error) {
	var out []Proposal
	for range n {
		if s.c.Proposed >= s.maxProps {
			break
		}
		if orig := s.nextRepeat(); orig != nil {
			params := s.codec.decode(orig.x)
			on := orig.number
			t, err := s.record(s.next, orig.x, orig.key, params, SamplerRepeat, &on, nil)
			if err != nil {
				return out, err
			}
			out = append(out, Proposal{Trial: t.number, Params: params, Sampler: SamplerRepeat, RepeatOf: &on})
			continue
		}
		x, name, attrs, err := s.proposeOne()
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
		t, err := s.record(s.next, x, keyOf(x), params, name, nil, attrs)
		if err != nil {
			return out, err
		}
		out = append(out, Proposal{Trial: t.number, Params: params, Sampler: name})
	}
	return out, nil
}

// maxResample bounds how often an algorithm is asked again after proposing a
// configuration that was proposed before or is known to fail.
const maxResample = 16

// proposeOne picks a configuration that was never proposed.
func (s *Study) proposeOne() ([]int, string, map[string]string, error) {
	if s.spec.Sampler.BaselineEnabled() && len(s.h.trials) == 0 {
		return s.codec.baseline(), SamplerBaseline, nil, nil
	}
	if x := s.nextWarm(); x != nil {
		return x, SamplerWarmStart, nil, nil
	}
	v := s.view()
	var fallback []int
	var fallbackName string
	var fallbackAttrs map[string]string
	for range maxResample {
		x, name, attrs := s.prop.propose(v)
		if x == nil {
			break
		}
		if _, dup := s.h.seen[keyOf(x)]; dup {
			continue
		}
		if s.screen && s.feas.knownFailure(x) {
			if fallback == nil {
				fallback, fallbackName, fallbackAttrs = x, name, attrs
			}
			continue
		}
		return x, name, attrs, nil
	}
	for range 4 * maxResample {
		x := s.codec.random(s.rng)
		if _, dup := s.h.seen[keyOf(x)]; dup {
			continue
		}
		if s.screen && s.feas.knownFailure(x) {
			continue
		}
		return x, study.AlgoRandom, nil, nil
	}
	if fallback != nil {
		return fallback, fallbackName, fallbackAttrs, nil
	}
	// Nearly everything was proposed: scan the space from a random start.
	if float64(len(s.h.seen)) >= s.codec.size() {
		return nil, "", nil, ErrSpaceExhausted
	}
	x := s.codec.random(s.rng)
	for range 1 << 22 {
		s.codec.next(x)
		if _, dup := s.h.seen[keyOf(x)]; !dup {
			return x, study.AlgoRandom, nil, nil
		}
	}
	return nil, "", nil, ErrSpaceExhausted
}

// record registers a pending trial in the history.
func (s *Study) record(number int, x []int, key string, params events.Params, sampler string, repeatOf *int, attrs map[string]string) (*trial, error) {
	t, err := s.h.ask(number, x, key, params, sampler, repeatOf, attrs)
	if err != nil {
		return nil, err
	}
	s.next = max(s.next, number+1)
	s.c.Proposed++
	s.c.InFlight++
	s.askedAt[number] = s.h.version
	return t, nil
}

// adopt records a proposal that arrived from elsewhere (a restart, or an
// outcome whose proposal is missing); its params may not fit the space.
func (s *Study) adopt(p Proposal) error {
	if _, known := s.h.byNumber[p.Trial]; known {
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
	var repeatOf *int
	if p.RepeatOf != nil {
		if orig, ok := s.h.byNumber[*p.RepeatOf]; ok && orig.repeatOf == nil && orig.number != p.Trial {
			repeatOf = p.RepeatOf
		}
	}
	_, err := s.record(p.Trial, x, key, p.Params, p.Sampler, repeatOf, nil)
	return err
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
	if o.Kind < Completed || o.Kind > Pruned {
		return fmt.Errorf("%w: trial %d has kind %d", ErrBadOutcome, o.Trial, int(o.Kind))
	}
	t, ok := s.h.byNumber[o.Trial]
	if !ok {
		if o.Params == nil {
			return fmt.Errorf("%w: %d", ErrUnknownTrial, o.Trial)
		}
		if err := s.adopt(Proposal{Trial: o.Trial, Params: o.Params, Sampler: "unknown"}); err != nil {
			return err
		}
		t = s.h.byNumber[o.Trial]
	}
	if t.status != statusPending {
		return nil
	}
	if err := s.h.tell(t, o); err != nil {
		return err
	}
	s.c.InFlight--
	s.c.GPUSeconds += o.GPUSeconds
	s.es.finished(t, o, s.spec.Directions())
	switch t.status {
	case statusCompleted:
		s.c.Completed++
		if !t.ownFeasible {
			s.c.Infeasible++
		}
	case statusFailed:
		s.c.Failed++
		key := failureKey(t)
		if at, seen := s.causeAt[key]; seen && at <= s.askedAt[t.number] {
			s.c.KnownCause++
		}
		if _, seen := s.causeAt[key]; !seen {
			s.causeAt[key] = s.h.version
		}
	case statusPruned:
		s.c.Pruned++
	case statusRejected:
		s.c.Rejected++
	case statusDuplicate:
		s.c.Rejected++
		s.c.Duplicates++
	}
	return nil
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
	for _, t := range s.h.trials {
		if t.feasible && t.repeatOf == nil && t.x != nil {
			cands = append(cands, t)
			pts = append(pts, t.y)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	var best *trial
	for _, i := range study.ParetoFront(pts, study.MinDirections(len(pts[0]))) {
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
	case s.spec.GPUHours > 0 && s.c.GPUSeconds >= s.spec.GPUHours*3600:
		return true, StopGPUHours
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
	dirs := s.spec.Directions()
	for _, t := range s.h.bench {
		if t.feasible {
			pts = append(pts, study.MinForm(t.y, dirs))
		}
	}
	return study.Hypervolume(pts, dirs, ref)
}

// FrontSize is the number of feasible results on the Pareto front.
func (s *Study) FrontSize() int {
	var pts [][]float64
	for _, t := range s.h.bench {
		if t.feasible {
			pts = append(pts, t.y)
		}
	}
	if len(pts) == 0 {
		return 0
	}
	return len(study.ParetoFront(pts, study.MinDirections(len(pts[0]))))
}
