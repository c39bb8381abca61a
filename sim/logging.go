package sim

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logger writes SGLang-style log lines ("[2025-06-01 12:00:00 TP0] ...")
// to stderr. It is safe for concurrent use.
type logger struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	// quiet drops info lines (--log-level warning and above), as SGLang's
	// and uvicorn's loggers do; errors and tracebacks are always written.
	quiet bool
}

func newLogger(w io.Writer) *logger { return &logger{w: w} }

// logf writes one line with a timestamp and an optional rank prefix ("TP0").
func (l *logger) logf(rank, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	b = append(b, '[')
	b = time.Now().AppendFormat(b, "2006-01-02 15:04:05")
	if rank != "" {
		b = append(b, ' ')
		b = append(b, rank...)
	}
	b = append(b, "] "...)
	b = fmt.Appendf(b, format, args...)
	b = append(b, '\n')
	l.buf = b
	_, _ = l.w.Write(b)
}

// info is logf at info level.
func (l *logger) info(rank, format string, args ...any) {
	if !l.quiet {
		l.logf(rank, format, args...)
	}
}

// infoRaw is raw at info level (uvicorn "INFO:" lines).
func (l *logger) infoRaw(format string, args ...any) {
	if !l.quiet {
		l.raw(format, args...)
	}
}

// raw writes text as is (tracebacks, uvicorn lines).
func (l *logger) raw(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.w, format, args...)
}
