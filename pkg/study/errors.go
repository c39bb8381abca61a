package study

import "errors"

// ErrUnknownParam is returned for a parameter name SGLang's launch_server does not know.
var ErrUnknownParam = errors.New("unknown parameter")

// ErrInvalidSpec is returned (wrapped, with the file and key) for any problem in a study spec.
var ErrInvalidSpec = errors.New("invalid study spec")
