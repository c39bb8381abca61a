package model

import "fmt"

// Failure classes of a LaunchError, matching the runner's failure classes.
const (
	ClassOOM   = "oom"
	ClassCrash = "crash"
)

// Phases of a server's life at which a LaunchError strikes.
const (
	// PhaseArgs: ServerArgs validation, before the HTTP server listens.
	PhaseArgs = "args"
	// PhaseInit: process and distributed init (device binding).
	PhaseInit = "init"
	// PhaseLoad: model construction and weight loading.
	PhaseLoad = "load"
	// PhaseKV: KV-cache profiling and allocation.
	PhaseKV = "kv"
	// PhaseAttention: attention backend initialisation.
	PhaseAttention = "attention"
	// PhaseGraph: CUDA-graph capture (and torch.compile).
	PhaseGraph = "graph"
	// PhaseRuntime: while serving requests.
	PhaseRuntime = "runtime"
)

// LaunchError is a failure SGLang itself would have for a config: an argument
// assertion, a backend that does not run on the GPU, or running out of
// memory. Exception and Message are the Python exception line SGLang prints
// ("RuntimeError: Not enough memory. ...").
type LaunchError struct {
	// Class is ClassOOM or ClassCrash.
	Class string
	// Phase is when it happens (PhaseArgs ... PhaseRuntime).
	Phase string
	// Exception is the Python exception type ("AssertionError", "RuntimeError").
	Exception string
	// Message is the exception's text.
	Message string
}

func (e *LaunchError) Error() string {
	return fmt.Sprintf("%s: %s", e.Exception, e.Message)
}

func crash(phase, exc, format string, args ...any) *LaunchError {
	return &LaunchError{Class: ClassCrash, Phase: phase, Exception: exc, Message: fmt.Sprintf(format, args...)}
}

func oom(phase, exc, format string, args ...any) *LaunchError {
	return &LaunchError{Class: ClassOOM, Phase: phase, Exception: exc, Message: fmt.Sprintf(format, args...)}
}
