package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sgtune/sgtune/services/reporter"
)

// cmdExport writes a study in a format other tools read: an Optuna journal,
// CSV or the results JSON, rebuilt from the outcomes stream.
func cmdExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	format := fs.String("format", "", "`FORMAT`: "+strings.Join(reporter.ExportFormats(), ", ")+" (required)")
	studyName := fs.String("study", "", "study `NAME` (default: the study in pareto/front, the latest)")
	fs.StringVar(studyName, "study-name", "", aliasPrefix+"--study")
	output := fs.String("output", "", "write to `FILE` (replaced atomically; default: standard output)")
	store := addStoreFlags(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *format == "" {
		return usageError("--format is required: %s", strings.Join(reporter.ExportFormats(), ", "))
	}
	if !validFormat(*format) {
		return usageError("--format %q: want %s", *format, strings.Join(reporter.ExportFormats(), ", "))
	}
	js, closeStore, err := store.open(ctx, "sgtune-export")
	if err != nil {
		return err
	}
	defer closeStore()
	var buf bytes.Buffer
	if err := reporter.Export(ctx, js, *studyName, *format, &buf); err != nil {
		return err
	}
	if *output == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if err := writeFileAtomic(*output, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sgtune export: wrote %s (%s, %d bytes)\n", *output, *format, buf.Len())
	return nil
}

func validFormat(f string) bool {
	for _, known := range reporter.ExportFormats() {
		if f == known {
			return true
		}
	}
	return false
}

// writeFileAtomic replaces path with data: a temporary file beside it, then a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
