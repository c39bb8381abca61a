// Package sglang manages the lifecycle of one SGLang server process (or any
// program with the same command line and HTTP API, such as sgtune's
// simulator): launch from an argv in its own process group, wait for
// /health_generate, stop the whole group, and classify why it failed.
//
// A server that fails is not an infrastructure error: WaitHealthy and Stop
// report config-caused failures as *Failure values carrying one of the
// events.Fail* classes, which the trial executor turns into a failed result.
package sglang

import (
	"errors"
	"fmt"
)

// ErrNoCommand is returned by Launch when the spec has an empty command.
var ErrNoCommand = errors.New("sglang: empty server command")

// ErrGroupSurvived is returned by Stop when a process of the server's group
// is still alive after SIGKILL and the grace period.
var ErrGroupSurvived = errors.New("sglang: process group survived SIGKILL")

// Failure is a config-caused failure of a server: it exited, ran out of
// memory, never became healthy or stopped answering. Class is one of the
// events.Fail* constants.
type Failure struct {
	Class  string
	Reason string
}

func (f *Failure) Error() string { return fmt.Sprintf("%s: %s", f.Class, f.Reason) }

// AsFailure returns the *Failure in err's chain, if any.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	ok := errors.As(err, &f)
	return f, ok
}
