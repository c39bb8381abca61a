package sampler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/natsio"
)

// ErrSpecChanged is returned (inside a *SpecChangedError) when a study is
// resumed with a spec whose space, objectives, constraints, rules, workload
// or model differ from the stored one.
var ErrSpecChanged = errors.New("the study's stored spec differs")

// ErrStudyOwned is returned when a fresh start (--no-load) is asked for a
// study another live sampler is running.
var ErrStudyOwned = errors.New("the study is running in another process")

// SpecChangedError lists the differences a resume refuses.
type SpecChangedError struct {
	Study   string
	Changes []study.Change
	// Additive is true when every change is additive, so --allow-spec-change would accept them.
	Additive bool
}

func (e *SpecChangedError) Error() string {
	hint := "start it fresh with --no-load (deletes its trials), or use another --study-name"
	if e.Additive {
		hint = "these changes are additive: resume with --allow-spec-change, or " + hint
	}
	return fmt.Sprintf("%s: study %q was started with another spec:\n%s\n%s", ErrSpecChanged, e.Study, study.DescribeChanges(e.Changes), hint)
}

func (e *SpecChangedError) Unwrap() error { return ErrSpecChanged }

// Stored is what NATS holds about a study when a sampler (or sgtune up) starts.
type Stored struct {
	// Exists is true when the study has an entry in sgtune_studies.
	Exists bool
	State  events.StudyState
	// Owner is the live sampler that owns the study (nil when none).
	Owner *events.Lease
	// Changes are the differences between the stored spec and the new one.
	Changes []study.Change
}

// Inspect reads what is stored about spec's study. js must be provisioned.
func Inspect(ctx context.Context, js jetstream.JetStream, spec study.Spec) (Stored, error) {
	var s Stored
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return s, err
	}
	st, _, err := natsx.GetJSON[events.StudyState](ctx, kv, spec.StudyName)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return s, err
	default:
		s.Exists, s.State = true, st
		if stored, err := study.FromJSON(st.Spec); err == nil {
			s.Changes = study.Diff(stored, spec)
		}
	}
	owner, ok, err := natsio.StudyOwner(ctx, js, spec.StudyName)
	if err != nil {
		return s, err
	}
	if ok {
		s.Owner = &owner
	}
	return s, nil
}

// Check says whether a start may go on: a fresh start of a study another
// sampler runs is ErrStudyOwned; a resume whose spec differs in what a
// trial means is a *SpecChangedError, unless allowSpecChange and every
// difference is additive.
func (s Stored) Check(fresh, allowSpecChange bool) error {
	if fresh {
		if s.Owner != nil {
			return fmt.Errorf("%w (%s on %s, pid %d, owner since %s): --no-load would delete it under that process; stop it first",
				ErrStudyOwned, s.Owner.Instance, s.Owner.Host, s.Owner.PID, s.Owner.AcquiredAt.Format(time.RFC3339))
		}
		return nil
	}
	refused := study.Refused(s.Changes, allowSpecChange)
	if len(refused) == 0 {
		return nil
	}
	additive := true
	for _, c := range refused {
		additive = additive && c.Additive
	}
	return &SpecChangedError{Study: s.State.Study, Changes: refused, Additive: additive}
}

// Trials counts the stored study's trials (for --no-load's notice).
func (s Stored) Trials() (proposed, benchmarked, rejected int) {
	return s.State.Proposed, s.State.Benchmarked, s.State.Rejected
}
