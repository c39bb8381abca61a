package front

import "errors"

// ErrConflict is returned by Report.Fold when a trial number already has a
// different outcome: the first one is kept.
var ErrConflict = errors.New("trial already has a different outcome")

// ErrOtherStudy is returned by Report.Fold for an outcome of another study.
var ErrOtherStudy = errors.New("outcome belongs to another study")

// ErrBadOutcome is returned by Report.Fold for an outcome with an unknown state
// or a negative trial number.
var ErrBadOutcome = errors.New("bad outcome")
