package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's interpreter, where python3-optuna and
// python3-pandas install (the python3 on PATH may be another one).
const debianPython = "/usr/bin/python3"

// requirePythonModules skips the test, with the reason, where Debian's
// Python lacks a module and apt cannot install it; where apt could have
// (`make test` runs `make test-deps` first), a missing module is a failure.
func requirePythonModules(t *testing.T, modules ...string) {
	t.Helper()
	script := "import " + strings.Join(modules, ", ")
	out, err := exec.Command(debianPython, "-c", script).CombinedOutput()
	if err == nil {
		return
	}
	msg := "Debian's " + debianPython + " cannot " + script + " (" + strings.TrimSpace(lastLineOf(string(out))) + ")"
	if _, aptErr := exec.LookPath("apt-get"); aptErr == nil && os.Geteuid() == 0 {
		t.Fatalf("%s: run `make test-deps` (apt-get install python3-optuna python3-pandas)", msg)
	}
	t.Skipf("%s, and apt-get is not available to install it: skipping the check in Optuna itself", msg)
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// storeDigest hashes every file under dir, to prove a reader changed nothing.
func storeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestUpThenExport runs a study to the end, then reads what `sgtune up` left
// in its --data-dir after it exited, as a user would: the hint it printed,
// sgtune front, and sgtune export in every format, loading the Optuna journal
// in Optuna itself (study.best_trials must be sgtune's front) and the CSV in
// pandas. The store must not change.
func TestUpThenExport(t *testing.T) {
	dir := t.TempDir()
	// A user's benchmark: every fourth trial runs out of memory; p99 TTFT
	// grows with the trial number, so later trials miss the SLO below.
	script := writeFile(t, dir, "bench.sh", `#!/bin/sh
read -r line
trial=$(echo "$line" | sed -n 's/.*"trial":\([0-9]*\).*/\1/p')
if [ $((trial % 4)) = 3 ]; then echo "CUDA out of memory" >&2; exit 1; fi
echo "{\"ttft\": 0.0$(( (trial * 7) % 9 + 1)), \"tps\": $((1000 + trial * 37 % 11 * 100)), \"p99_ttft_ms\": $((40 + trial))}"
`)
	spec := writeFile(t, dir, "study.yaml", `study_name: exported
n_trials: 16
constraints:
  - {metric: p99_ttft_ms, max: 52}
`)
	data := filepath.Join(dir, "data")
	results := filepath.Join(dir, "results.json")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--backend", "exec", "--benchmark-cmd", script, "--spec", spec, "--gpus", "8",
		"--data-dir", data, "--output", results, "--listen", "127.0.0.1:0", "--storage", "sqlite:///sglang_optuna.db")
	if err != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	// The seed's --storage is answered, not refused.
	if !strings.Contains(errOut, "--storage sqlite:///sglang_optuna.db is not used: sgtune keeps studies in JetStream") ||
		!strings.Contains(errOut, "sgtune export --format optuna-journal --data-dir "+data) {
		t.Fatalf("no --storage message:\n%s", errOut)
	}

	// The hint at the end names a command that works now that up has exited.
	hint := regexp.MustCompile(`the front, later: sgtune (front [^(\n]*?) \(`).FindStringSubmatch(errOut)
	if hint == nil {
		t.Fatalf("no front hint in:\n%s", errOut)
	}
	before := storeDigest(t, data)
	frontOut, frontErr, err := runSgtune(t, ctx, strings.Fields(hint[1])...)
	if err != nil || !strings.Contains(frontOut, "Number of Pareto optimal solutions") {
		t.Fatalf("the hinted %q: %v\n%s%s", hint[1], err, frontOut, frontErr)
	}

	journal := filepath.Join(dir, "exported.journal")
	csvFile := filepath.Join(dir, "exported.csv")
	jsonFile := filepath.Join(dir, "exported.json")
	for format, file := range map[string]string{"optuna-journal": journal, "csv": csvFile, "json": jsonFile} {
		if o, e, err := runSgtune(t, ctx, "export", "--format", format, "--data-dir", data, "--study", "exported", "--output", file); err != nil {
			t.Fatalf("export %s: %v\n%s%s", format, err, o, e)
		}
	}
	if after := storeDigest(t, data); after != before {
		t.Fatal("reading the stopped store changed it")
	}

	// The JSON export is the results document up wrote.
	var fromUp, exported struct {
		Trials      []json.RawMessage `json:"trials"`
		ParetoFront []struct {
			TrialNumber int `json:"trial_number"`
		} `json:"pareto_front"`
	}
	for path, v := range map[string]any{results: &fromUp, jsonFile: &exported} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(exported.Trials) != len(fromUp.Trials) || len(exported.ParetoFront) == 0 || len(exported.ParetoFront) != len(fromUp.ParetoFront) {
		t.Fatalf("json export: %d trials, front %v; up wrote %d trials, front %v",
			len(exported.Trials), exported.ParetoFront, len(fromUp.Trials), fromUp.ParetoFront)
	}

	requirePythonModules(t, "optuna")
	check := exec.CommandContext(ctx, debianPython, filepath.Join("testdata", "optuna_check.py"), journal, "exported", jsonFile, csvFile)
	check.Dir = "."
	got, err := check.CombinedOutput()
	if err != nil {
		t.Fatalf("Optuna could not load the export: %v\n%s", err, got)
	}
	var report struct {
		OK         bool     `json:"ok"`
		Optuna     string   `json:"optuna"`
		BestTrials []int    `json:"best_trials"`
		States     []string `json:"states"`
		CSV        struct {
			Rows   int    `json:"rows"`
			Reader string `json:"reader"`
		} `json:"csv"`
	}
	if err := json.Unmarshal([]byte(lastLineOf(string(got))), &report); err != nil || !report.OK {
		t.Fatalf("optuna check: %v\n%s", err, got)
	}
	// Completed, failed (OOM and missed SLOs) and rejected trials all appear.
	if strings.Join(report.States, ",") != "COMPLETE,FAIL,PRUNED" || report.CSV.Rows != len(fromUp.Trials) {
		t.Fatalf("optuna check: %s", got)
	}
	t.Logf("Optuna %s loaded %d trials; best_trials %v = sgtune's front; CSV read by %s", report.Optuna, len(fromUp.Trials), report.BestTrials, report.CSV.Reader)
}

// TestUpStopsWhenEveryTrialFails: a benchmark command that fails the same way
// every time stops the study after --max-consecutive-failures trials, and a
// study whose trials all failed exits non-zero; both say why.
func TestUpStopsWhenEveryTrialFails(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "bench.sh", `#!/bin/sh
read -r line
echo "ModuleNotFoundError: No module named 'vllm' (pid $$)" >&2
exit 1
`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"up", "--backend", "exec", "--benchmark-cmd", script, "--gpus", "8", "--listen", "127.0.0.1:0", "--quiet",
		"--output", filepath.Join(dir, "results.json")}

	_, errOut, err := runSgtune(t, ctx, append(base, "--n-trials", "50", "--data-dir", filepath.Join(dir, "streak"), "--study-name", "streak")...)
	var exit *exec.ExitError
	if !asExitError(err, &exit) || exit.ExitCode() != 1 ||
		!regexp.MustCompile(`the last \d+ benchmarked trials all failed the same way, SGLang's defaults \(trial 0\) included`).MatchString(errOut) ||
		!strings.Contains(errOut, "No module named 'vllm'") {
		t.Fatalf("repeated failure: %v\n%s", err, errOut)
	}

	_, errOut, err = runSgtune(t, ctx, append(base, "--n-trials", "3", "--max-consecutive-failures", "0",
		"--data-dir", filepath.Join(dir, "all"), "--study-name", "all")...)
	if !asExitError(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errOut, "all 3 benchmarked trials failed") {
		t.Fatalf("every trial failed: %v\n%s", err, errOut)
	}
}

func asExitError(err error, target **exec.ExitError) bool { return errors.As(err, target) }
