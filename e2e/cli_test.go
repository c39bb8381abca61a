package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/reporter"
)

// startNATS runs `sgtune nats` as its own process and returns its URL.
func startNATS(t *testing.T, dir string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(sgtuneBin, "nats", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(dir, "nats"), "--logs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	eventually(t, 20*time.Second, "sgtune nats to accept clients", func() bool {
		nc, err := nats.Connect(url)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
	return url
}

func jsClient(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func runSgtune(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, sgtuneBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

type frontDoc struct {
	StudyName   string `json:"study_name"`
	NTrials     int    `json:"n_trials"`
	ParetoFront []struct {
		TrialNumber int            `json:"trial_number"`
		TTFT        float64        `json:"ttft"`
		TPS         float64        `json:"tps"`
		Parameters  map[string]any `json:"parameters"`
		State       string         `json:"state"`
	} `json:"pareto_front"`
}

// TestUpAgainstSeparateNATS is the distributed shape on one machine:
// `sgtune nats` alone, then `sgtune up --nats-url` runs a study against it, and
// the front is in KV pareto/front for any NATS client.
func TestUpAgainstSeparateNATS(t *testing.T) {
	dir := t.TempDir()
	url := startNATS(t, dir)
	spec := writeFile(t, dir, "study.yaml", quickSpec("cli", 6))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--nats-url", url, "--sim", "--spec", spec, "--runners", "2",
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatalf("sgtune up: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{"Number of finished trials: 6", "Number of Pareto optimal solutions:", "TTFT:", "TPS:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	js := jsClient(t, url)
	v := readFront(t, ctx, js, events.KeyFront)
	checkFrontLine(t, v)
	var doc frontDoc
	if err := json.Unmarshal(v, &doc); err != nil || doc.StudyName != "cli" || doc.NTrials != 6 || len(doc.ParetoFront) == 0 {
		t.Fatalf("front %s (%v)", v, err)
	}
	// The results file is a superset of the seed's output.
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results struct {
		frontDoc
		Trials []struct {
			TrialNumber int    `json:"trial_number"`
			State       string `json:"state"`
		} `json:"trials"`
	}
	if err := json.Unmarshal(raw, &results); err != nil || results.NTrials != 6 || len(results.Trials) < 6 {
		t.Fatalf("results file: %v %+v", err, results)
	}
	// The page plots the study from the outcomes stream.
	page := httptest.NewServer(reporter.PageHandler(js, "cli"))
	defer page.Close()
	resp, err := http.Get(page.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script id="sgtune-data" type="application/json">{"study":"cli"`) ||
		!strings.Contains(string(body), `id="plot-front"`) || strings.Contains(string(body), "http://") && strings.Contains(string(body), "<script src=") {
		t.Fatalf("front page: HTTP %d\n%.3000s", resp.StatusCode, body)
	}
	// Its data: the study's trials and front, from the outcomes stream.
	resp, err = http.Get(page.URL + "/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Study  string            `json:"study"`
		Trials []json.RawMessage `json:"trials"`
		Front  []json.RawMessage `json:"front"`
	}
	err = json.NewDecoder(resp.Body).Decode(&data)
	resp.Body.Close()
	if err != nil || data.Study != "cli" || len(data.Trials) < 6 || len(data.Front) == 0 || resp.Header.Get("ETag") == "" {
		t.Fatalf("data.json: %v %+v (ETag %q)", err, data, resp.Header.Get("ETag"))
	}
	// `sgtune front` prints the same front from KV.
	out, errOut, err = runSgtune(t, ctx, "front", "--nats-url", url)
	if err != nil || !strings.Contains(out, "Number of Pareto optimal solutions") {
		t.Fatalf("sgtune front: %v\n%s%s", err, out, errOut)
	}
}

// TestUpWithExecBackend runs the seed's run_test hook: a user command per
// trial reading the trial on stdin and printing {"ttft", "tps"}.
func TestUpWithExecBackend(t *testing.T) {
	dir := t.TempDir()
	// A user's benchmark script: TTFT and TPS derived from the trial number, an
	// extra metric, and a failure on its first run.
	marker := filepath.Join(dir, "ran-once")
	script := writeFile(t, dir, "bench.sh", `#!/bin/sh
read -r line
trial=$(echo "$line" | sed -n 's/.*"trial":\([0-9]*\).*/\1/p')
if [ ! -e `+marker+` ]; then touch `+marker+`; echo "CUDA out of memory" >&2; exit 1; fi
echo "{\"ttft\": 0.0$((trial + 1)), \"tps\": $((1000 + trial * 37 % 11 * 100)), \"p99_ttft_ms\": 42}"
`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, err := runSgtune(t, ctx, "up", "--backend", "exec", "--benchmark-cmd", script, "--n-trials", "8",
		"--study-name", "exec-study", "--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"), "--device-num", "8", "--gpus", "8")
	if err != nil {
		t.Fatalf("sgtune up --backend exec: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results struct {
		NTrials int `json:"n_trials"`
		Trials  []struct {
			TrialNumber int                `json:"trial_number"`
			State       string             `json:"state"`
			Metrics     map[string]float64 `json:"metrics"`
			Reason      string             `json:"reason"`
		} `json:"trials"`
	}
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatal(err)
	}
	if results.NTrials != 8 {
		t.Fatalf("n_trials = %d", results.NTrials)
	}
	sawFailure, sawExtra := false, false
	for _, tr := range results.Trials {
		if tr.State == events.StateFailed && strings.Contains(tr.Reason, "CUDA out of memory") {
			sawFailure = true
		}
		if tr.State == events.StateComplete && tr.Metrics["p99_ttft_ms"] == 42 {
			sawExtra = true
		}
	}
	if !sawFailure || !sawExtra {
		t.Fatalf("failure recorded %v, extra metric kept %v: %s", sawFailure, sawExtra, raw)
	}
}

// TestUpResumesAfterKill kills `sgtune up` (SIGKILL) in the middle of a study
// and starts it again: no finished trial is lost and no trial number runs twice.
func TestUpResumesAfterKill(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "study.yaml", quickSpec("resume", 10))
	data := filepath.Join(dir, "data")
	port := freePort(t)
	args := []string{"up", "--sim", "--spec", spec, "--runners", "1", "--data-dir", data,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--output", filepath.Join(dir, "results.json")}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	first := exec.CommandContext(ctx, sgtuneBin, args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	// Kill it once a few trials are recorded.
	eventually(t, 2*time.Minute, "3 outcomes before the kill", func() bool {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		s, err := js.Stream(ctx, events.StreamOutcomes)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= 3
	})
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	eventually(t, 10*time.Second, "the killed study's simulators to exit", func() bool { return len(simProcesses()) == 0 })

	out, errOut, err := runSgtune(t, ctx, args...)
	if err != nil {
		t.Fatalf("resume: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "Number of finished trials: 10") {
		t.Fatalf("resumed study did not finish its 10 trials:\n%s\n%s", out, errOut)
	}
	// Read the record back with the server the resumed run left on disk.
	srvURL := startNATSOn(t, data)
	js := jsClient(t, srvURL)
	outs := outcomes(t, ctx, js, "resume") // fails on a trial with two outcomes
	benchmarked := 0
	for _, env := range outs {
		if env.Type == events.TypeTrialResult {
			benchmarked++
		}
	}
	if benchmarked != 10 {
		t.Fatalf("%d benchmarked outcomes after resume, want 10", benchmarked)
	}
}

// startNATSOn serves the store a finished `sgtune up` left in data.
func startNATSOn(t *testing.T, data string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(sgtuneBin, "nats", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(data, "nats"), "--logs=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	eventually(t, 20*time.Second, "nats to start", func() bool {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	return url
}
