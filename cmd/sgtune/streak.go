package main

import (
	"fmt"
	"strings"
	"unicode"
)

// failureStreak watches benchmarked outcomes in arrival order and reports
// when the last limit of them failed the same way (same failure class, same
// reason once numbers such as ports, PIDs and times are set aside) and the
// baseline, trial 0 with SGLang's defaults, failed that way too. That is a
// broken benchmark or server command, or a broken host (a wrong model path,
// no CUDA), not a region of bad configurations: a run of configurations that
// all fail one way while the defaults work (say, two-batch overlap on a
// dense model) is what the sampler learns from, and the study goes on. A
// study without a baseline (sampler.baseline: false) stops on the streak
// alone. Rejections by the validator are not benchmarks: they neither count
// nor reset the streak.
type failureStreak struct {
	limit int
	// needBaseline: stop only once trial 0 is known to have failed the same way.
	needBaseline bool

	sig  string
	n    int
	last string // the last reason, as it was

	baselineKnown bool
	baselineSig   string // "" when the baseline completed
}

// observe folds one benchmarked outcome (complete = it measured; otherwise
// class and reason say how it failed); counted is false for outcomes from
// before this run, which only tell the baseline's fate. It reports whether
// the study should stop now. A limit of 0 never stops.
func (s *failureStreak) observe(trial int, complete bool, class, reason string, counted bool) bool {
	sig := ""
	if !complete {
		sig = class + "\x00" + failureSignature(reason)
	}
	if trial == 0 {
		s.baselineKnown, s.baselineSig = true, sig
	}
	if !counted {
		return false
	}
	if complete {
		s.sig, s.n = "", 0
	} else {
		if sig != s.sig {
			s.sig, s.n = sig, 0
		}
		s.n++
		s.last = strings.TrimSpace(reason)
	}
	return s.stopping()
}

// stopping reports whether the streak is at its limit and the baseline (if
// the study has one) failed the same way.
func (s *failureStreak) stopping() bool {
	if s.limit <= 0 || s.n < s.limit {
		return false
	}
	return !s.needBaseline || (s.baselineKnown && s.baselineSig == s.sig)
}

// reason says in words why the study stopped.
func (s *failureStreak) reason() string {
	class, _, _ := strings.Cut(s.sig, "\x00")
	also := ""
	if s.needBaseline {
		also = ", SGLang's defaults (trial 0) included"
	}
	return fmt.Sprintf("the last %d benchmarked trials all failed the same way%s (%s: %s): the benchmark or server command, or the host, is broken, not the configurations; fix it and run the same command again to resume",
		s.n, also, class, firstLine(s.last))
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
