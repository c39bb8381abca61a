package events

import "errors"

// ErrBadStudyName is returned for a study name that cannot be a subject token.
var ErrBadStudyName = errors.New("bad study name")

// ErrBadSubject is returned when a subject does not follow the subject scheme.
var ErrBadSubject = errors.New("subject does not follow the sgtune scheme")

// ErrUnknownType is returned when an envelope names a type this version does not know.
var ErrUnknownType = errors.New("unknown event type")

// ErrMalformed is returned when a payload is not valid JSON for its type or misses a required field.
var ErrMalformed = errors.New("malformed event")
