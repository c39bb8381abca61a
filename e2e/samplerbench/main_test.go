package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for samplerbench itself as the
// exec backend's benchmark command (`<binary> eval ...`).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "eval" {
		if err := evalMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			if code, ok := err.(exitCode); ok {
				os.Exit(int(code))
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchmarkSmoke runs a few short studies offline and one through the
// real services (the exec backend running this binary's eval), and checks
// the report has every row and counts.
func TestBenchmarkSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole studies")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"-mode", "offline", "-surfaces", "synth-cliffs,synth-ridge", "-variants", "gp-ehvi-par,random-seq",
		"-seeds", "1", "-budget", "12", "-search-random", "400", "-search-pairs=false", "-refdir", dir, "-workers", "2"}
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("offline: %v\n%s", err, errb.String())
	}
	for _, want := range []string{"### synth-cliffs", "### synth-ridge (HELD OUT)", "| gp-ehvi-par | ", "| random-seq | ", "known-cause failures"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("offline report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	args = []string{"-mode", "services", "-surfaces", "synth-cliffs", "-variants", "gp-ehvi-par",
		"-seeds", "1", "-budget", "10", "-refdir", dir, "-workers", "1", "-time-scale", "0.0001"}
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("services: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "| gp-ehvi-par | ") || !strings.Contains(out.String(), "Mode services, 1 seeds, budget 10, 1 studies") {
		t.Fatalf("services report:\n%s", out.String())
	}
}

func TestStudyNames(t *testing.T) {
	s, v, ok := parseStudyName(studyName("sim-h100-llama8b", "gp-ehvi-par", 3))
	if !ok || s != "sim-h100-llama8b" || v != "gp-ehvi-par" {
		t.Fatalf("parsed (%q, %q, %v)", s, v, ok)
	}
	if _, _, ok := parseStudyName("quickstart"); ok {
		t.Fatal("a user's study parsed as a benchmark study")
	}
}
