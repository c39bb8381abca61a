package sglang

import (
	"sync"
	"unicode/utf8"
)

// Ring keeps the last Size bytes written to it. It is safe for concurrent use.
type Ring struct {
	mu   sync.Mutex
	buf  []byte
	next int  // index of the next write
	full bool // the buffer wrapped at least once
}

// NewRing returns a ring buffer keeping the last size bytes.
func NewRing(size int) *Ring {
	if size <= 0 {
		size = 1
	}
	return &Ring{buf: make([]byte, size)}
}

// Write stores p, dropping the oldest bytes when full. It never fails.
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) >= len(r.buf) {
		copy(r.buf, p[len(p)-len(r.buf):])
		r.next, r.full = 0, true
		return n, nil
	}
	c := copy(r.buf[r.next:], p)
	if c < len(p) {
		copy(r.buf, p[c:])
		r.full = true
	}
	r.next = (r.next + len(p)) % len(r.buf)
	if r.next == 0 && len(p) > 0 {
		r.full = true
	}
	return n, nil
}

// Bytes returns a copy of the kept bytes, oldest first.
func (r *Ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]byte(nil), r.buf[:r.next]...)
	}
	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Tail returns at most n of the last bytes as a string, starting at a rune
// boundary (and at a line start when one is near) so it reads cleanly.
func (r *Ring) Tail(n int) string { return TailString(r.Bytes(), n) }

// TailString returns the last n bytes of b cut at a clean boundary.
func TailString(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		// Prefer starting at a line; accept losing up to 1/4 of the budget.
		for i := 0; i < len(b) && i < n/4; i++ {
			if b[i] == '\n' {
				b = b[i+1:]
				break
			}
		}
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	return string(b)
}
