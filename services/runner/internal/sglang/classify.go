package sglang

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/sgtune/sgtune/pkg/events"
)

// oomPatterns are log lines that mean the server ran out of GPU (or host) memory:
// PyTorch's allocator, SGLang's own KV-pool check, and raw CUDA errors.
var oomPatterns = [][]byte{
	[]byte("CUDA out of memory"),
	[]byte("OutOfMemoryError"),
	[]byte("Not enough memory"),
	[]byte("CUDA error: out of memory"),
	[]byte("CUBLAS_STATUS_ALLOC_FAILED"),
}

// HasOOM reports whether log text contains an out-of-memory message.
func HasOOM(log []byte) bool {
	for _, p := range oomPatterns {
		if bytes.Contains(log, p) {
			return true
		}
	}
	return false
}

// oomWatcher is an io.Writer that remembers whether an OOM pattern ever went
// through it, across write boundaries and however long the log grows (the ring
// buffer may have dropped the line by the time the process exits).
type oomWatcher struct {
	mu    sync.Mutex
	carry []byte
	seen  bool
}

const maxPatternLen = 32

func (w *oomWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen {
		return len(p), nil
	}
	buf := append(w.carry, p...)
	if HasOOM(buf) {
		w.seen = true
		w.carry = nil
		return len(p), nil
	}
	if len(buf) > maxPatternLen {
		buf = buf[len(buf)-maxPatternLen:]
	}
	w.carry = append(w.carry[:0], buf...)
	return len(p), nil
}

func (w *oomWatcher) Seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// ClassifyExit names the failure of a server that exited: oom when its log
// shows an out-of-memory error, crash otherwise. The reason names the exit
// status and, for OOM, says so.
func ClassifyExit(state *os.ProcessState, oom bool) *Failure {
	status := describeExit(state)
	if oom {
		return &Failure{Class: events.FailOOM, Reason: "server ran out of memory and " + status}
	}
	return &Failure{Class: events.FailCrash, Reason: "server " + status}
}

func describeExit(state *os.ProcessState) string {
	if state == nil {
		return "exited"
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %s", ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", state.ExitCode())
}

// exceptionLine matches a Python exception line: "AssertionError: ...",
// "torch.OutOfMemoryError: ...", "RuntimeError: CUDA error: ...".
var exceptionLine = regexp.MustCompile(`(?:^|[\s:])((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Interrupt))(?::\s.*)?$`)

// LastException returns the last Python exception line of a log tail (without
// any prefix before the exception's name), so a failed trial's reason says what
// SGLang said, not only its exit status. "" when there is none.
func LastException(tail string) string {
	lines := strings.Split(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if line == "" {
			continue
		}
		m := exceptionLine.FindStringSubmatchIndex(line)
		if m == nil {
			continue
		}
		out := line[m[2]:]
		if len(out) > 300 {
			out = out[:300] + "..."
		}
		return out
	}
	return ""
}
