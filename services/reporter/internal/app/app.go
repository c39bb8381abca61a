// Package app is the reporter's use case: fold each outcome into its study's
// report and publish the derived documents through small ports (the studies
// bucket, the outcomes history, the front store, the results file), so it can
// be tested with in-memory fakes. It imports no NATS.
package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// ErrStudyNotFound is returned (wrapped) by a Studies port for a study with no
// entry yet: the outcome is retried later.
var ErrStudyNotFound = errors.New("study not found")

// ErrBadSpec is returned (wrapped) by a Studies port when the stored spec does
// not parse: no retry can fix it.
var ErrBadSpec = errors.New("stored study spec is invalid")

// ErrNoChange is returned by a FrontStore closure to skip the write.
var ErrNoChange = errors.New("no change")

// StudyInfo is what the reporter needs of a study's entry in sgtune_studies.
type StudyInfo struct {
	Spec study.Spec
	// StartedAt identifies the run of the study: a study restarted fresh has a
	// new one, and its report starts over.
	StartedAt time.Time
}

// Studies reads study entries.
type Studies interface {
	// Study returns the study's spec and start; ErrStudyNotFound or ErrBadSpec (wrapped).
	Study(ctx context.Context, name string) (StudyInfo, error)
}

// History replays a study's stored outcomes.
type History interface {
	// Replay calls fn with every outcome stored for study, oldest first, and
	// returns once it has delivered all that were stored when it started.
	// Messages that do not decode are skipped.
	Replay(ctx context.Context, study string, fn func(front.Outcome) error) error
	// Between calls fn with every outcome of study stored after stream
	// sequence after and before sequence before, oldest first (Outcome.Seq set).
	Between(ctx context.Context, study string, after, before uint64, fn func(front.Outcome) error) error
}

// FrontStore stores front documents by key, updating them with a closure.
type FrontStore interface {
	// Update applies fn to the document at key (the zero document when there is
	// none) and stores the result. fn may run several times (compare-and-swap
	// retries); when it returns ErrNoChange nothing is written and Update
	// returns nil; any other error aborts the update and is returned.
	Update(ctx context.Context, key string, fn func(doc *front.FrontDoc) error) error
}

// ResultsSink receives the full results of a study after every change.
type ResultsSink interface {
	WriteResults(study string, doc front.ResultsDoc) error
}

// Service folds outcomes into per-study reports. It is safe for concurrent
// use (calls are serialised).
type Service struct {
	studies Studies
	history History
	store   FrontStore
	sink    ResultsSink
	logger  zerolog.Logger

	mu      sync.Mutex
	reports map[string]*session
	order   []string // studies by last update, oldest first
	// stored, when set, hears of every new outcome folded into a front that
	// was then stored (metrics).
	stored func(doc front.FrontDoc, o front.Outcome)
}

// OnFrontStored sets fn to be called, under the service's lock, after an
// outcome that changed its study's report was folded and the front stored.
// Call it before the first HandleOutcome.
func (s *Service) OnFrontStored(fn func(doc front.FrontDoc, o front.Outcome)) { s.stored = fn }

type session struct {
	report      *front.Report
	fileWritten bool
	// seq is the highest stream sequence of the study's outcomes folded: the
	// report holds every outcome of the study stored up to it.
	seq uint64
}

// NewService wires the use case. sink may be nil (no results file); the
// other ports are required.
func NewService(studies Studies, history History, store FrontStore, sink ResultsSink, logger zerolog.Logger) *Service {
	if studies == nil || history == nil || store == nil {
		panic("app.NewService: nil port")
	}
	return &Service{studies: studies, history: history, store: store, sink: sink, logger: logger, reports: map[string]*session{}}
}

// HandleOutcome folds one outcome into its study's report and stores the
// front under pareto/front.<study> and pareto/front. It returns nil only once
// both writes succeeded (or had nothing to change), so the outcome may then be
// acked; a redelivered outcome folds to no change and rewrites nothing new.
// The first outcome of a study seen by this process, or the first after the
// study was restarted fresh, rebuilds the report by replaying the study's
// outcomes. Before folding an outcome at stream sequence o.Seq the report
// catches up with every outcome of the study stored before it (those other
// reporters took from the shared consumer), so the front written is always
// the non-dominated set of a whole prefix of the study's record, and a front
// of a shorter prefix never overwrites a longer one: with any number of
// reporters the stored front ends as that of every outcome. Errors:
// ErrStudyNotFound (retry), ErrBadSpec or front.ErrBadOutcome (permanent),
// anything else transient.
func (s *Service) HandleOutcome(ctx context.Context, o front.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.logger.With().Str("study", o.Study).Int("trial", o.Trial).Logger()
	info, err := s.studies.Study(ctx, o.Study)
	if err != nil {
		return fmt.Errorf("load study %s: %w", o.Study, err)
	}
	sess, err := s.session(ctx, o.Study, info, log)
	if err != nil {
		return err
	}
	changed := false
	if o.Seq > sess.seq+1 {
		err := s.history.Between(ctx, o.Study, sess.seq, o.Seq, func(prev front.Outcome) error {
			c, ferr := sess.report.Fold(prev)
			if ferr != nil {
				log.Warn().Err(ferr).Int("stored_trial", prev.Trial).Msg("stored outcome skipped")
			}
			changed = changed || c
			sess.seq = max(sess.seq, prev.Seq)
			return nil
		})
		if err != nil {
			return fmt.Errorf("catch up with the outcomes of %s before %d: %w", o.Study, o.Seq, err)
		}
	}
	c, err := sess.report.Fold(o)
	switch {
	case errors.Is(err, front.ErrConflict):
		// The stream holds one outcome per trial subject; keep the first.
		log.Warn().Err(err).Msg("conflicting outcome ignored")
	case err != nil:
		return fmt.Errorf("fold trial %d: %w", o.Trial, err)
	}
	changed = changed || c
	sess.seq = max(sess.seq, o.Seq)
	doc := sess.report.Front()
	wrote, err := s.storeFront(ctx, doc)
	if err != nil {
		return err
	}
	s.touch(o.Study)
	if changed && s.stored != nil {
		s.stored(doc, o)
	}
	if wrote {
		log.Info().Str("state", o.State).Int("front_size", len(doc.ParetoFront)).Int("benchmarked", doc.NTrials).
			Float64("hypervolume", doc.Hypervolume).Msg("front updated")
	} else {
		log.Debug().Msg("outcome already in the front")
	}
	if s.sink != nil && (changed || !sess.fileWritten) {
		// The file is a derived view (rebuildable with WriteResults): a failure
		// is logged, not retried, so it cannot hold up the KV front.
		if err := s.sink.WriteResults(o.Study, sess.report.Results()); err != nil {
			log.Error().Err(err).Msg("could not write the results file")
		} else {
			sess.fileWritten = true
		}
	}
	return nil
}

// session returns the study's report, rebuilding it from the history when the
// process has none yet or the study was restarted.
func (s *Service) session(ctx context.Context, name string, info StudyInfo, log zerolog.Logger) (*session, error) {
	if sess, ok := s.reports[name]; ok && sess.report.StartedAt().Equal(info.StartedAt) {
		return sess, nil
	} else if ok {
		log.Info().Time("started_at", info.StartedAt).Time("was_started_at", sess.report.StartedAt()).
			Msg("study restarted fresh: report reset")
	}
	r, seq, err := rebuild(ctx, s.history, name, info, s.logger.With().Str("study", name).Logger())
	if err != nil {
		return nil, err
	}
	log.Info().Int("outcomes", r.Len()).Msg("report rebuilt from the outcomes stream")
	sess := &session{report: r, seq: seq}
	s.reports[name] = sess
	return sess, nil
}

// Rebuild builds a study's report from its stored outcomes. Outcomes that
// cannot be folded (conflicts, bad states) are logged (log should carry the
// study; each line adds the trial) and skipped.
func Rebuild(ctx context.Context, history History, name string, info StudyInfo, log zerolog.Logger) (*front.Report, error) {
	r, _, err := rebuild(ctx, history, name, info, log)
	return r, err
}

// rebuild is Rebuild that also returns the highest stream sequence folded.
func rebuild(ctx context.Context, history History, name string, info StudyInfo, log zerolog.Logger) (*front.Report, uint64, error) {
	r := front.NewReport(name, info.Spec, info.StartedAt)
	var seq uint64
	err := history.Replay(ctx, name, func(o front.Outcome) error {
		seq = max(seq, o.Seq)
		if _, err := r.Fold(o); err != nil {
			log.Warn().Err(err).Int("trial", o.Trial).Msg("stored outcome skipped")
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("replay outcomes of %s: %w", name, err)
	}
	return r, seq, nil
}

// storeFront writes front.<study>, then front. The latter holds the most
// recently updated study: a study whose newest outcome is older than the
// stored one's does not take it over (a redelivered outcome of an old study).
// It reports whether front.<study> was written.
func (s *Service) storeFront(ctx context.Context, doc front.FrontDoc) (wrote bool, err error) {
	err = s.store.Update(ctx, events.FrontKey(doc.StudyName), func(cur *front.FrontDoc) error {
		wrote = false
		if front.SameFront(*cur, doc) || covers(*cur, doc) {
			return ErrNoChange
		}
		*cur = doc
		wrote = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store %s: %w", events.FrontKey(doc.StudyName), err)
	}
	err = s.store.Update(ctx, events.KeyFront, func(cur *front.FrontDoc) error {
		if front.SameFront(*cur, doc) {
			return ErrNoChange
		}
		if cur.StudyName != "" && cur.StudyName != doc.StudyName && cur.UpdatedAt.After(doc.UpdatedAt) {
			return ErrNoChange
		}
		if covers(*cur, doc) {
			return ErrNoChange
		}
		*cur = doc
		return nil
	})
	if err != nil {
		return wrote, fmt.Errorf("store %s: %w", events.KeyFront, err)
	}
	return wrote, nil
}

// covers reports whether the stored front cur was built from more of the
// same study run's record than doc (another reporter got further): doc
// would take it back. Both are fronts of prefixes of one record, so the
// outcome count orders them.
func covers(cur, doc front.FrontDoc) bool {
	return cur.StudyName == doc.StudyName && cur.StartedAt.Equal(doc.StartedAt) && cur.Counts.Outcomes > doc.Counts.Outcomes
}

func (s *Service) touch(name string) {
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	s.order = append(s.order, name)
}

// Fronts returns the front of every study this service updated, the most
// recently updated last.
func (s *Service) Fronts() []front.FrontDoc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]front.FrontDoc, 0, len(s.order))
	for _, name := range s.order {
		out = append(out, s.reports[name].report.Front())
	}
	return out
}
