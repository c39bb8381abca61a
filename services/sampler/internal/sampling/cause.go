package sampling

import (
	"regexp"
	"strings"
)

// FailureCause extracts the decisive line of a failed trial from the tail of
// its log and the runner's reason (in that order of preference) and
// normalises it, so that every launch failing the same way maps to one key:
//
//  1. the last Python exception line ("AssertionError: Two-batch overlap
//     requires ..."; "torch.OutOfMemoryError: CUDA out of memory ...");
//  2. else the last line that reads like an error ("error: --enable-foo is
//     not supported on this GPU", "FATAL ...", "... out of memory ...",
//     "Segmentation fault"; a level word such as "error:" marks one too),
//     as the exec backend's benchmark commands and native crashes print
//     them;
//  3. else, for the exec backend's reason (a failed command's stderr after
//     "stderr:"), the last line of its stderr that is not a traceback frame
//     or an info/debug/warning line: a command that fails says why last,
//     in whatever words;
//  4. else "".
//
// Normalising drops log prefixes ("[2025-11-27 10:00:01 TP0] ", "ERROR:
// ") and the runner's own wrapper ("benchmark command failed: exit status
// 1; stderr: "), replaces file paths by "<path>", hex addresses by "<addr>"
// and numbers by '#' (digits inside a word, as in FA4, SM90 or a2a, are
// kept), collapses white space, and keeps at most 160 bytes.
func FailureCause(logTail string, reason ...string) string {
	texts := append([]string{logTail}, reason...)
	for _, pick := range []func(string) string{lastException, lastErrorLine, lastStderrLine} {
		for _, t := range texts {
			if line := pick(t); line != "" {
				return normaliseCause(line)
			}
		}
	}
	return ""
}

// exceptionLine matches a Python exception line and captures it from the
// exception's (dotted) name on.
var exceptionLine = regexp.MustCompile(`(?:^|[\s:\]])((?:[A-Za-z_][A-Za-z0-9_]*\.)*(?:[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Interrupt)|Exception))(?::\s.*)?$`)

func lastException(text string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := unwrap(strings.TrimSpace(lines[i]))
		if l == "" {
			continue
		}
		if m := exceptionLine.FindStringSubmatchIndex(l); m != nil {
			return l[m[2]:]
		}
	}
	return ""
}

// errorWords mark a line that reports a failure.
var errorWords = regexp.MustCompile(`(?i)\b(error|errors|fatal|fail|failed|failure|panic|abort|aborted|assert|assertion|unsupported|not supported|invalid|cannot|can't|unable|out of memory|oom|segmentation fault|core dumped|killed|illegal|not implemented|refused|mismatch|exceeds?)\b`)

// noiseLine is a line that is never the decisive one: traceback frames and
// the runner's exit-status summaries.
var noiseLine = regexp.MustCompile(`^(Traceback \(most recent call last\)|File "|During handling of the above|The above exception|\^+$|~+$)|^(benchmark command failed|server exited with status|server was killed by signal)`)

func lastErrorLine(text string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		raw := stripWrapper(strings.TrimSpace(lines[i]))
		l := unwrap(raw)
		if l == "" || noiseLine.MatchString(l) {
			continue
		}
		// The prefix counts: "error: fa4 decode kernels are not available"
		// says what it is only in its level word.
		if errorWords.MatchString(raw) {
			return l
		}
	}
	return ""
}

// lastStderrLine is the last telling line of the stderr the exec backend's
// reason carries (after "stderr:"), or "" when text carries none.
func lastStderrLine(text string) string {
	m := wrapper.FindStringIndex(text)
	if m == nil {
		return ""
	}
	lines := strings.Split(text[m[1]:], "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		raw := strings.TrimSpace(lines[i])
		l := unwrap(raw)
		if l == "" || noiseLine.MatchString(l) || quietLevel.MatchString(raw) {
			continue
		}
		return l
	}
	return ""
}

// quietLevel marks a log line of a level that does not report a failure.
var quietLevel = regexp.MustCompile(`(?i)^(\[[^\]]*\]\s*|\d{4}-\d\d-\d\d[T ][\d:.,]+Z?\s*)*(\[)?(debug|info|warning|warn|notice)\b`)

// wrapper is the exec backend's reason, which carries stderr after it.
var wrapper = regexp.MustCompile(`^.*?;\s*stderr:\s*(?:\.\.\.)?`)

// stripWrapper drops the runner's wrapper from a line.
func stripWrapper(l string) string {
	if m := wrapper.FindStringIndex(l); m != nil && m[1] < len(l) {
		l = l[m[1]:]
	}
	return l
}

// unwrap drops the runner's wrapper and log prefixes from a line.
func unwrap(l string) string {
	l = stripWrapper(l)
	for {
		t := strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))
		if t == l {
			return l
		}
		l = t
	}
}

// logPrefix is one leading log decoration: a bracketed group, a
// timestamp, a level word with a colon or a "pid NNN" tag.
var logPrefix = regexp.MustCompile(`^(\[[^\]]*\]|\d{4}-\d\d-\d\d[T ][\d:.,]+Z?|(?i:debug|info|warning|warn|error|critical|fatal)\s*[:|-]|\(pid=?\s*\d+\)|pid\s*\d+:)\s*`)

var (
	pathRe = regexp.MustCompile(`(?:[A-Za-z]:)?(?:\.{0,2}/[\w.@+-]+){2,}/?|(?:[\w.@+-]+/){2,}[\w.@+-]+`)
	hexRe  = regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`)
	wsRe   = regexp.MustCompile(`\s+`)
)

// normaliseCause folds the variable parts of a decisive line (see
// FailureCause).
func normaliseCause(l string) string {
	l = pathRe.ReplaceAllString(l, "<path>")
	l = hexRe.ReplaceAllString(l, "<addr>")
	var b strings.Builder
	folding, inWord := false, false // inside a folded number; inside a word (letters, then digits)
	for _, r := range l {
		isDigit := r >= '0' && r <= '9'
		switch {
		case isDigit && folding:
		case isDigit && !inWord:
			b.WriteByte('#')
			folding = true
		default:
			folding = false
			b.WriteRune(r)
		}
		inWord = isLetter(r) || (isDigit && inWord) || (r == '#' && inWord)
	}
	out := strings.TrimSpace(wsRe.ReplaceAllString(b.String(), " "))
	if len(out) > 160 {
		out = out[:160]
	}
	return out
}

func isLetter(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_' }
