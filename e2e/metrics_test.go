package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads a Prometheus text exposition into "name{labels}" -> value.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// family sums the samples of one metric whose labels contain every given pair.
func family(m map[string]float64, name string, labels ...string) (float64, bool) {
	sum, found := 0.0, false
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// TestMetricsDuringAStudy scrapes /metrics of a running `sgtune up` (every
// service in one process) and finds each metric the operations guide lists,
// with values that move as the study runs.
func TestMetricsDuringAStudy(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, dir, "study.yaml", quickSpec("metrics", 14))
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sgtuneBin, "up", "--sim", "--spec", spec, "--runners", "2", "--data-dir", filepath.Join(dir, "data"),
		"--output", filepath.Join(dir, "results.json"), "--listen", "127.0.0.1:0", "--health-addr", fmt.Sprintf("127.0.0.1:%d", port), "--quiet")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	var m map[string]float64
	eventually(t, 3*time.Minute, "/metrics to show benchmarked trials and a front", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("sgtune up exited before the check: %v\n%s", err, stderr.String())
		default:
		}
		got, err := scrape(url)
		if err != nil {
			return false
		}
		m = got
		completed, _ := family(m, "sgtune_trials", `state="COMPLETE"`, `study="metrics"`)
		size, _ := family(m, "sgtune_front_size", `study="metrics"`)
		return completed >= 3 && size >= 1
	})
	for _, want := range []struct {
		name   string
		labels []string
	}{
		{"sgtune_trials", []string{`study="metrics"`, `state="COMPLETE"`, `class="feasible"`}},
		{"sgtune_trials", []string{`study="metrics"`, `state="REJECTED"`}},
		{"sgtune_trials_in_flight", []string{`study="metrics"`}},
		{"sgtune_study_trials", []string{`kind="budget"`}},
		{"sgtune_proposal_seconds_count", []string{`study="metrics"`}},
		{"sgtune_validation_seconds_count", []string{`result="done"`}},
		{"sgtune_outcome_to_front_seconds_count", nil},
		{"sgtune_front_size", []string{`study="metrics"`}},
		{"sgtune_hypervolume", []string{`study="metrics"`}},
		{"sgtune_runner_gpus", []string{`runner=`}},
		{"sgtune_runner_gpus_busy", []string{`runner=`}},
		{"sgtune_runner_gpus_quarantined", []string{`runner=`}},
		{"sgtune_runner_trials_running", []string{`runner=`}},
		{"sgtune_queue_depth", []string{`gpu_class="g1"`}},
		{"go_goroutines", nil},
	} {
		if _, ok := family(m, want.name, want.labels...); !ok {
			t.Errorf("/metrics has no %s%v", want.name, want.labels)
		}
	}
	if v, _ := family(m, "sgtune_runner_gpus"); v != 8 {
		t.Errorf("sgtune_runner_gpus sums to %v over the 2 runners, want 8 (2 x 4 simulated)", v)
	}
	if v, _ := family(m, "sgtune_study_trials", `kind="budget"`); v != 14 {
		t.Errorf("budget %v, want 14", v)
	}
	if v, _ := family(m, "sgtune_hypervolume", `study="metrics"`); v <= 0 {
		t.Errorf("hypervolume %v", v)
	}
}
