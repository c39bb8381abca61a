package sampling

import "errors"

// ErrUnknownTrial is returned by Tell for an outcome of a trial this study
// never proposed and whose outcome carries no parameters to adopt it with.
var ErrUnknownTrial = errors.New("unknown trial")

// ErrSpaceExhausted is returned by Propose when every configuration of the
// search space has been proposed already.
var ErrSpaceExhausted = errors.New("search space exhausted")

// ErrUnknownAlgorithm is returned by NewStudy for an algorithm name it does not know.
var ErrUnknownAlgorithm = errors.New("unknown sampling algorithm")

// ErrBadOutcome is returned by Tell for an outcome with an unknown kind.
var ErrBadOutcome = errors.New("bad outcome")
