package main

import (
	"fmt"
	"strings"
	"unicode"
)

// failureStreak watches benchmarked outcomes in arrival order and reports
// when the last limit of them failed the same way: same failure class and
// the same reason once numbers (ports, PIDs, trial numbers, times) are set
// aside. That is a broken benchmark command or environment, not a bad
// configuration, and every further trial would fail alike. Rejections by the
// validator are not benchmarks: they neither count nor reset the streak.
type failureStreak struct {
	limit int
	sig   string
	n     int
	last  string // the last reason, as it was
}

// observe folds one benchmarked outcome (complete = it measured; otherwise
// class and reason say how it failed) and reports whether the streak is now
// at its limit. A limit of 0 never stops.
func (s *failureStreak) observe(complete bool, class, reason string) bool {
	if complete {
		s.sig, s.n = "", 0
		return false
	}
	sig := class + "\x00" + failureSignature(reason)
	if sig != s.sig {
		s.sig, s.n = sig, 0
	}
	s.n++
	s.last = strings.TrimSpace(reason)
	return s.limit > 0 && s.n >= s.limit
}

// reason says in words why the study stopped.
func (s *failureStreak) reason() string {
	class, _, _ := strings.Cut(s.sig, "\x00")
	return fmt.Sprintf("the last %d benchmarked trials all failed the same way (%s: %s): the benchmark or the server command is broken, not the configurations; fix it and run the same command again to resume",
		s.n, class, firstLine(s.last))
}

// failureSignature is a reason with every run of digits replaced by '#'.
func failureSignature(reason string) string {
	var b strings.Builder
	digits := false
	for _, r := range strings.TrimSpace(reason) {
		if unicode.IsDigit(r) {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}
