package natsio

import "errors"

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
