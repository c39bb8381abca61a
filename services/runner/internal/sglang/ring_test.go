package sglang

import (
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		size     int
		writes   []string
		expected string
	}{
		{name: "empty", size: 4, expected: ""},
		{name: "fits", size: 8, writes: []string{"ab", "cd"}, expected: "abcd"},
		{name: "exactly full", size: 4, writes: []string{"ab", "cd"}, expected: "abcd"},
		{name: "wraps", size: 4, writes: []string{"abc", "def"}, expected: "cdef"},
		{name: "one big write", size: 4, writes: []string{"abcdefgh"}, expected: "efgh"},
		{name: "many small", size: 3, writes: []string{"a", "b", "c", "d", "e"}, expected: "cde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(tt.size)
			for _, w := range tt.writes {
				r.Write([]byte(w))
			}
			if got := string(r.Bytes()); got != tt.expected {
				t.Fatalf("Bytes = %q, want %q", got, tt.expected)
			}
		})
	}
}

func TestTailString_cuts_at_line_and_rune(t *testing.T) {
	t.Parallel()
	got := TailString([]byte("first line\nsecond line\nthird"), 20)
	if got != "second line\nthird" && got != "line\nthird" {
		t.Fatalf("TailString = %q", got)
	}
	got = TailString([]byte(strings.Repeat("é", 10)), 5)
	if !strings.HasPrefix(got, "é") || len(got) > 5 {
		t.Fatalf("TailString = %q, want whole runes", got)
	}
}

func TestOOMWatcher_across_writes(t *testing.T) {
	t.Parallel()
	w := &oomWatcher{}
	w.Write([]byte("loading weights...\ntorch.OutOfMem"))
	if w.Seen() {
		t.Fatal("seen too early")
	}
	w.Write([]byte("oryError: CUDA out of"))
	if !w.Seen() {
		t.Fatal("pattern split across writes not seen")
	}
}

func TestPorts_distinct(t *testing.T) {
	t.Parallel()
	var p Ports
	seen := map[int]bool{}
	for range 20 {
		port, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}
