package natsio

import (
	"errors"
	"fmt"
)

// ErrStudyNotFound is returned when the sgtune_studies bucket has no entry for
// a candidate's study yet. It is transient: the sampler writes the study before
// (or just after) its first candidate, so the candidate is retried later.
var ErrStudyNotFound = errors.New("study not found")

// ErrBadSpec is returned when a study's stored spec does not decode or
// validate. No redelivery can fix it: the candidate is dead-lettered.
var ErrBadSpec = errors.New("stored study spec is invalid")

// ErrBadCandidate is returned for a candidate that cannot be processed at all
// (a study name that cannot be a subject token). It is dead-lettered.
var ErrBadCandidate = errors.New("candidate cannot be processed")

// ErrNoLiveRunner is returned while a study uses the hardware rule set and no
// runner has published a heartbeat in sgtune_fleet: the validator cannot know
// what the fleet can host, so the candidate waits (and is retried) rather
// than being judged against guesses.
var ErrNoLiveRunner = errors.New("no live runner in sgtune_fleet")

// errorsJoin wraps cause in sentinel, keeping both for errors.Is.
func errorsJoin(sentinel, cause error) error { return fmt.Errorf("%w: %w", sentinel, cause) }
