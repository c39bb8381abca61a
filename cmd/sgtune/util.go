package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// errHelp is returned when the user asked for -h: not a failure.
var errHelp = errors.New("help requested")

func asExit(err error, target **exitError) bool { return errors.As(err, target) }

// parseFlags parses args, mapping -h to errHelp and other problems to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError("%v", err)
	}
	return nil
}

// newLogger writes JSON logs to w, or console lines when w is a terminal.
func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			w = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05"}
		}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// envOr returns getenv(key), or def when it is empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func firstNonEmptyStr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkSetInts refuses an integer flag given explicitly as 0 or less: 0 is
// the flag's "unset" value (the spec decides), so an explicit 0 or a
// negative count is a mistake, not a request for the spec's value.
func checkSetInts(fs *flag.FlagSet, names ...string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil || !slices.Contains(names, f.Name) {
			return
		}
		if n, perr := strconv.Atoi(f.Value.String()); perr == nil && n < 1 {
			err = usageError("--%s must be at least 1, got %d (leave it out to use the spec's value)", f.Name, n)
		}
	})
	return err
}

// say prints one line on w unless quiet.
func say(w io.Writer, quiet bool, format string, args ...any) {
	if !quiet {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// splitArgs splits a command line into an argv without a shell: spaces
// separate words, single or double quotes group them.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
