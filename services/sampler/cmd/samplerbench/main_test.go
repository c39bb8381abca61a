package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun runs a tiny benchmark end to end on the simulator's model: a short
// reference search written to the cache, two samplers, a results file scored.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.json")
	results := filepath.Join(dir, "results.json")
	doc := `{"reference_point":{"ttft":2.5,"tps":0},"trials":[
		{"trial_number":0,"state":"COMPLETE","feasible":true,"objectives":{"ttft":1.26,"tps":3398}},
		{"trial_number":1,"state":"REJECTED"},
		{"trial_number":2,"state":"FAILED"},
		{"trial_number":3,"state":"COMPLETE","feasible":true,"objectives":{"ttft":0.2,"tps":9000}}],
		"hypervolume_history":[{"trial_number":0,"benchmarked":1,"hypervolume":4289},{"trial_number":2,"benchmarked":2,"hypervolume":4289},{"trial_number":3,"benchmarked":3,"hypervolume":20880}]}`
	if err := os.WriteFile(results, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-seeds", "1", "-budgets", "12", "-variants", "motpe,random", "-search-random", "300",
		"-search-pairs=false", "-reference", ref, "-results", results}
	var out, errs bytes.Buffer
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("run: %v\n%s", err, errs.String())
	}
	for _, want := range []string{"| motpe | 12 |", "| random | 12 |", "Reference point (fixed): ttft = 2.52", "| 3 | 3 |"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errs.String(), "reference search:") {
		t.Fatalf("no reference search on the first run:\n%s", errs.String())
	}
	// The second run reads the cache.
	out.Reset()
	errs.Reset()
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if strings.Contains(errs.String(), "reference search:") || strings.Contains(errs.String(), "not used") {
		t.Fatalf("the cached reference was not used:\n%s", errs.String())
	}
}

func TestParseFlags(t *testing.T) {
	var errs bytes.Buffer
	if _, err := parseFlags([]string{"-variants", "nope"}, &errs); err == nil {
		t.Fatal("unknown variant accepted")
	}
	o, err := parseFlags([]string{"-quick"}, &errs)
	if err != nil || o.seeds != 3 || len(o.budgets) != 1 || o.budgets[0] != 50 {
		t.Fatalf("-quick: %+v %v", o, err)
	}
}
