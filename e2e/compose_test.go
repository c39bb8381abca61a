//go:build compose

// Container end-to-end tests: the deploy/ compose files in real containers.
// Run them with `make compose-e2e`, which builds the images (make images), the
// Compose v2 plugin when this Docker lacks it, and the nats CLI, then runs
//
//	go test -tags compose -run TestCompose ./e2e
//
// They never skip: without a Docker engine they fail. Environment (set by the
// Makefile; defaults in parentheses):
//
//	SGTUNE_REPO         repository root (..)
//	COMPOSE_CMD         how to run Compose v2 ("docker compose")
//	NATS_CLI            the nats CLI (nats on PATH)
//	SGTUNE_IMAGE        the sgtune image (sgtune/sgtune:dev)
//	NATS_SERVER_IMAGE   the nats-server image (sgtune/nats-server:dev)
//	COMPOSE_E2E_TRIALS  the study's budget (24)
//	COMPOSE_E2E_KEEP=1  leave the stacks up after the test (debugging)
//
// Each test uses its own Compose project (sgtune-e2e-<scenario>-<pid>), random
// credentials and random host ports, and removes its containers, networks and
// volumes at the end, so several runs can share a Docker engine.
package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	composeStudy = "compose-quick"
	composeSpec  = "./specs/compose-quick.yaml" // relative to deploy/
)

// composeStack is one Compose project started from deploy/.
type composeStack struct {
	t        *testing.T
	project  string
	deploy   string   // deploy/ directory
	files    []string // -f arguments, relative to deploy/
	compose  []string // argv prefix of Compose v2
	natsCLI  string
	env      []string // environment of compose and the nats CLI
	envFile  string   // an empty --env-file
	password string
	budget   int
}

func newComposeStack(t *testing.T, scenario string, files ...string) *composeStack {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("Docker is required for the compose tests and `docker info` failed: %v\n%s", err, out)
	}
	repo := composeEnvOr("SGTUNE_REPO", "..")
	repo, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	compose := strings.Fields(composeEnvOr("COMPOSE_CMD", "docker compose"))
	if out, err := exec.Command(compose[0], append(compose[1:], "version")...).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "v2.") {
		t.Fatalf("Compose v2 is required (%q): %v\n%s\n(make compose-e2e builds the plugin when Docker lacks it)",
			strings.Join(compose, " "), err, out)
	}
	natsCLI := composeEnvOr("NATS_CLI", "nats")
	if _, err := exec.LookPath(natsCLI); err != nil {
		t.Fatalf("the nats CLI is required (NATS_CLI=%q): %v (make compose-e2e installs it)", natsCLI, err)
	}
	budget := 24
	if v := os.Getenv("COMPOSE_E2E_TRIALS"); v != "" {
		if budget, err = strconv.Atoi(v); err != nil {
			t.Fatalf("COMPOSE_E2E_TRIALS=%q: %v", v, err)
		}
	}
	s := &composeStack{
		t:        t,
		project:  fmt.Sprintf("sgtune-e2e-%s-%d", scenario, os.Getpid()),
		deploy:   filepath.Join(repo, "deploy"),
		files:    files,
		compose:  compose,
		natsCLI:  natsCLI,
		password: "p" + composeRandomHex(t, 16),
		budget:   budget,
	}
	// An empty env file: a developer's deploy/.env must not leak into the test.
	envFile := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(envFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The nats CLI reads its contexts from the XDG config directory: use an empty one.
	home := t.TempDir()
	s.envFile = envFile
	s.env = append(os.Environ(),
		"COMPOSE_PROJECT_NAME="+s.project,
		"XDG_CONFIG_HOME="+home,
		"NATS_USER=sgtune",
		"NATS_PASSWORD="+s.password,
		"NATS_CLUSTER_USER=route",
		"NATS_CLUSTER_PASSWORD=r"+composeRandomHex(t, 16),
		"NATS_HOST_IP=127.0.0.1",
		"NATS_HOST_PORT=0", "NATS_HOST_PORT_2=0", "NATS_HOST_PORT_3=0",
		"SGTUNE_IMAGE="+composeEnvOr("SGTUNE_IMAGE", "sgtune/sgtune:dev"),
		"NATS_SERVER_IMAGE="+composeEnvOr("NATS_SERVER_IMAGE", "sgtune/nats-server:dev"),
		"SGTUNE_SPEC_FILE="+composeSpec,
		"SGTUNE_N_TRIALS="+strconv.Itoa(budget),
		"SGTUNE_NO_LOAD=false",
		"SIM_GPUS=2",
		"SIM_TIME_SCALE=0.05",
	)
	// Tear down whatever happened; print the logs first when the test failed.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run(2*time.Minute, "logs", "--no-color", "--timestamps", "--tail", "150")
			t.Logf("compose logs (last 150 lines per container):\n%s", out)
			ps, _ := s.run(time.Minute, "ps", "-a")
			t.Logf("compose ps -a:\n%s", ps)
		}
		if os.Getenv("COMPOSE_E2E_KEEP") == "1" {
			t.Logf("COMPOSE_E2E_KEEP=1: leaving project %s up (down -v it yourself)", s.project)
			return
		}
		if out, err := s.run(3*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	return s
}

func composeEnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func composeRandomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// run runs Compose with this stack's project, files and environment.
func (s *composeStack) run(timeout time.Duration, args ...string) (string, error) {
	argv := append([]string{}, s.compose[1:]...)
	argv = append(argv, "--project-name", s.project, "--project-directory", s.deploy, "--env-file", s.envFile)
	for _, f := range s.files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(s.deploy, f)
		}
		argv = append(argv, "-f", f)
	}
	argv = append(argv, args...)
	return s.exec(timeout, s.compose[0], argv...)
}

func (s *composeStack) exec(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.deploy
	cmd.Env = s.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %s", name, strings.Join(args, " "), timeout)
	}
	return out.String(), err
}

func (s *composeStack) must(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.run(timeout, args...)
	if err != nil {
		s.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *composeStack) docker(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.exec(timeout, "docker", args...)
	if err != nil {
		s.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// containers lists the ids of a service's containers (running or not).
func (s *composeStack) containers(service string) []string {
	return strings.Fields(s.must(time.Minute, "ps", "-a", "-q", service))
}

// natsURLs are the host addresses of the published NATS ports of the given services.
func (s *composeStack) natsURLs(services ...string) string {
	s.t.Helper()
	var urls []string
	for _, svc := range services {
		addr := strings.TrimSpace(s.must(time.Minute, "port", svc, "4222"))
		urls = append(urls, "nats://"+addr)
	}
	return strings.Join(urls, ",")
}

// nats runs the real NATS CLI against servers; credentials come from the
// environment (NATS_USER, NATS_PASSWORD), never from the command line.
func (s *composeStack) nats(servers string, args ...string) (string, error) {
	return s.exec(time.Minute, s.natsCLI, append([]string{"--server", servers, "--timeout", "10s"}, args...)...)
}

// composeStreamInfo is the part of `nats stream info --json` the tests read.
type composeStreamInfo struct {
	Config struct {
		Replicas int `json:"num_replicas"`
	} `json:"config"`
	State struct {
		Msgs uint64 `json:"messages"`
	} `json:"state"`
	Cluster struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"cluster"`
}

func (s *composeStack) composeStreamInfo(servers, stream string) composeStreamInfo {
	s.t.Helper()
	var info composeStreamInfo
	out, err := s.nats(servers, "stream", "info", stream, "--json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &info)
	}
	if err != nil {
		s.t.Fatalf("nats stream info %s: %v\n%s", stream, err, out)
	}
	return info
}

// composeFront is the part of KV pareto/front the tests check.
type composeFront struct {
	StudyName   string            `json:"study_name"`
	NTrials     int               `json:"n_trials"`
	ParetoFront []json.RawMessage `json:"pareto_front"`
}

// readFront reads `nats kv get pareto front --raw`; ok is false while the key is missing.
func (s *composeStack) readFront(servers string) (doc composeFront, raw string, ok bool) {
	out, err := s.nats(servers, "kv", "get", "pareto", "front", "--raw")
	if err != nil {
		return composeFront{}, out, false
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		s.t.Fatalf("pareto/front is not valid JSON: %v\n%s", err, out)
	}
	return doc, out, true
}

func (s *composeStack) waitFor(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}

// waitSampler waits until the sampler reports the study complete in its KV
// entry; its container stays up (SGTUNE_SAMPLER_LINGER), so that `up --wait`
// keeps working after the study.
func (s *composeStack) waitSampler(servers string, timeout time.Duration) {
	s.t.Helper()
	ids := s.containers("sampler")
	if len(ids) != 1 {
		s.t.Fatalf("want one sampler container, got %v", ids)
	}
	s.waitFor(timeout, "the sampler to finish the study", func() bool {
		out, err := s.nats(servers, "kv", "get", "sgtune_studies", composeStudy, "--raw")
		var st struct {
			Status string `json:"status"`
		}
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == "complete"
	})
	state := s.docker(time.Minute, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", ids[0])
	if f := strings.Fields(state); f[0] != "running" {
		s.t.Fatalf("the sampler is %s after the study, want running (lingering)", state)
	}
	s.t.Logf("sampler finished the study and lingers (%s)", state)
}

// checkStudy reads the front with the nats CLI once the reporter has folded
// every outcome in, checks it, and checks that nothing was lost: every
// proposal has exactly one outcome, no trial is left queued or dead-lettered.
func (s *composeStack) checkStudy(servers string) {
	s.t.Helper()
	var doc composeFront
	var raw string
	s.waitFor(time.Minute, fmt.Sprintf("pareto/front to count %d trials", s.budget), func() bool {
		var ok bool
		doc, raw, ok = s.readFront(servers)
		return ok && doc.NTrials >= s.budget
	})
	if doc.StudyName != composeStudy {
		s.t.Errorf("front study_name = %q, want %q", doc.StudyName, composeStudy)
	}
	if doc.NTrials != s.budget {
		s.t.Errorf("front n_trials = %d, want the budget %d", doc.NTrials, s.budget)
	}
	if len(doc.ParetoFront) == 0 {
		s.t.Errorf("front has an empty pareto_front:\n%s", raw)
	}
	for i, m := range doc.ParetoFront {
		var member struct {
			TrialNumber *int   `json:"trial_number"`
			State       string `json:"state"`
		}
		if err := json.Unmarshal(m, &member); err != nil || member.TrialNumber == nil || member.State != "COMPLETE" {
			s.t.Errorf("pareto_front[%d] is not a completed trial (%v): %s", i, err, m)
		}
	}
	if strings.ContainsAny(strings.TrimSpace(raw), "\n\t") {
		s.t.Errorf("the front is not one line of JSON")
	}
	s.t.Logf("front: study %s, %d trials, %d on the front (%d bytes)", doc.StudyName, doc.NTrials, len(doc.ParetoFront), len(raw))

	cands := s.composeStreamInfo(servers, "SGTUNE_CANDIDATES").State.Msgs
	outs := s.composeStreamInfo(servers, "SGTUNE_OUTCOMES").State.Msgs
	if cands == 0 || cands != outs {
		s.t.Errorf("%d candidates but %d outcomes: every proposal must have exactly one outcome", cands, outs)
	}
	if n := s.composeStreamInfo(servers, "SGTUNE_TRIALS").State.Msgs; n != 0 {
		s.t.Errorf("%d trials left in the work queue after the study completed", n)
	}
	if n := s.composeStreamInfo(servers, "SGTUNE_DLQ").State.Msgs; n != 0 {
		out, _ := s.nats(servers, "stream", "get", "SGTUNE_DLQ", "1")
		s.t.Errorf("%d dead-lettered messages; the first:\n%s", n, out)
	}
	s.t.Logf("streams: %d candidates, %d outcomes, work queue empty, no dead letters", cands, outs)

	// The operator's commands of docs/operations.md work against this deployment.
	for _, args := range [][]string{
		{"stream", "ls"},
		{"consumer", "info", "SGTUNE_TRIALS", "runners-g1"},
		{"kv", "get", "pareto", "front"},
	} {
		if out, err := s.nats(servers, args...); err != nil {
			s.t.Errorf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Runner log lines that end a claimed trial (services/runner/internal/natsio).
var (
	composeClaimedRe = regexp.MustCompile(`"message":"claimed trial"`)
	composeEndedRe   = regexp.MustCompile(`"message":"(result recorded|trial already had a result[^"]*|runner stopping; handing the trial back|runner stopping; trial handed back|trial hit an infrastructure error; handing it back|trial handed back after an infrastructure error|trial failed on infrastructure[^"]*|no GPUs for a claimed trial; handing it back)"`)
)

// busyRunner returns a runner container that is running a trial now.
func (s *composeStack) busyRunner(ids []string) (string, bool) {
	for _, id := range ids {
		logs := s.docker(time.Minute, "logs", id)
		if len(composeClaimedRe.FindAllStringIndex(logs, -1)) > len(composeEndedRe.FindAllStringIndex(logs, -1)) {
			return id, true
		}
	}
	return "", false
}

// TestComposeSimStack runs the CPU-only composeStack (compose.yaml + compose.sim.yaml),
// scales to three simulator runners, stops one of them in the middle of a
// trial, and checks that the study still completes with every trial accounted
// for and a front the nats CLI can read.
func TestComposeSimStack(t *testing.T) {
	start := time.Now()
	s := newComposeStack(t, "sim", "compose.yaml", "compose.sim.yaml")

	s.must(5*time.Minute, "up", "--detach", "--wait", "--wait-timeout", "180")
	t.Logf("stack up and healthy after %s", time.Since(start).Round(time.Millisecond))
	s.must(5*time.Minute, "up", "--detach", "--wait", "--wait-timeout", "180", "--no-recreate", "--scale", "runner=3")
	runners := s.containers("runner")
	if len(runners) != 3 {
		t.Fatalf("want 3 runner containers after --scale runner=3, got %d", len(runners))
	}
	t.Logf("scaled to 3 runners after %s", time.Since(start).Round(time.Millisecond))
	servers := s.natsURLs("nats")

	// Stop one runner while it runs a trial: it must hand the trial back (SIGTERM,
	// NakWithDelay) well within its stop_grace_period, and another runner runs it.
	var victim string
	s.waitFor(2*time.Minute, "a runner in the middle of a trial", func() bool {
		var ok bool
		victim, ok = s.busyRunner(runners)
		return ok
	})
	name := s.docker(time.Minute, "inspect", "-f", "{{.Name}}", victim)
	stopStart := time.Now()
	s.docker(time.Minute, "stop", victim)
	stopTook := time.Since(stopStart)
	exit := s.docker(time.Minute, "inspect", "-f", "{{.State.ExitCode}}", victim)
	logs := s.docker(time.Minute, "logs", victim)
	t.Logf("stopped runner %s mid-trial after %s: exit code %s, stop took %s",
		name, time.Since(start).Round(time.Millisecond), exit, stopTook.Round(time.Millisecond))
	if exit != "0" {
		t.Errorf("the stopped runner exited with %s, want 0 (a graceful stop, not a kill at the grace period)", exit)
	}
	if !strings.Contains(logs, "runner stopping; handing the trial back") && !strings.Contains(logs, "runner stopping; trial handed back") {
		t.Errorf("the stopped runner did not hand its trial back; its log:\n%s", composeTail(logs, 20))
	}

	// A crash as well: SIGKILL a second runner mid-trial. Nothing hands its trial
	// back; JetStream redelivers it after the consumer's AckWait (30 s).
	var others []string
	for _, id := range runners {
		if id != victim {
			others = append(others, id)
		}
	}
	var killed string
	s.waitFor(2*time.Minute, "another runner in the middle of a trial", func() bool {
		var ok bool
		killed, ok = s.busyRunner(others)
		return ok
	})
	s.docker(time.Minute, "kill", killed)
	t.Logf("killed runner %s mid-trial (SIGKILL) after %s",
		s.docker(time.Minute, "inspect", "-f", "{{.Name}}", killed), time.Since(start).Round(time.Millisecond))

	s.waitSampler(servers, 5*time.Minute)
	t.Logf("study complete after %s; the killed runner is now %s", time.Since(start).Round(time.Millisecond),
		s.docker(time.Minute, "inspect", "-f", "{{.State.Status}} (restarts: {{.RestartCount}})", killed))
	s.checkStudy(servers)
	t.Logf("scenario done in %s", time.Since(start).Round(time.Millisecond))
}

// TestComposeConfigs checks every documented combination of compose files
// resolves, and runs the official-image override (compose.nats-official.yaml)
// with sgtune's nats-server image, which has the official image's shape: the
// server must come up from deploy/nats/single.conf with JetStream and refuse
// clients without the password.
func TestComposeConfigs(t *testing.T) {
	s := newComposeStack(t, "configs", "compose.yaml", "compose.nats-official.yaml")
	s.env = append(s.env, "NATS_URL=nats://central.example:4222")
	for _, files := range [][]string{
		{"compose.yaml"},
		{"compose.yaml", "compose.sim.yaml"},
		{"compose.yaml", "compose.sim.yaml", "compose.cluster.yaml"},
		{"compose.yaml", "compose.nats-official.yaml"},
		{"runner-host.yaml"},
	} {
		c := *s
		c.files = files
		c.must(time.Minute, "config", "--quiet")
	}
	// runner-host.yaml must refuse to start without NATS_URL.
	c := *s
	c.files = []string{"runner-host.yaml"}
	c.env = append(append([]string{}, s.env...), "NATS_URL=")
	if out, err := c.run(time.Minute, "config", "--quiet"); err == nil || !strings.Contains(out, "NATS_URL") {
		t.Errorf("runner-host.yaml without NATS_URL: want an error naming NATS_URL, got %v\n%s", err, out)
	}

	health := filepath.Join(t.TempDir(), "health.yaml")
	if err := os.WriteFile(health, []byte(`services:
  nats:
    healthcheck:
      test: ["CMD", "sgtune", "health", "http://127.0.0.1:8222/healthz?js-enabled-only=true"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.files = append(s.files, health)
	s.env = append(s.env, "NATS_IMAGE="+composeEnvOr("NATS_SERVER_IMAGE", "sgtune/nats-server:dev"))
	s.must(3*time.Minute, "up", "--detach", "--wait", "--wait-timeout", "120", "nats")
	servers := s.natsURLs("nats")
	out, err := s.nats(servers, "account", "info")
	if err != nil || !strings.Contains(out, "JetStream Account Information") {
		t.Fatalf("nats account info on the official-shaped server: %v\n%s", err, out)
	}
	wrong := *s
	wrong.env = append(append([]string{}, s.env...), "NATS_PASSWORD=wrong")
	if out, err := wrong.nats(servers, "account", "info"); err == nil {
		t.Errorf("the server accepted a wrong password:\n%s", out)
	}
}

// TestComposeNATSCluster runs the composeStack on a three-node NATS cluster
// (compose.cluster.yaml: streams and buckets at three replicas), stops the node
// leading the outcomes stream in the middle of the study, and checks that the
// study completes with nothing lost; then the node comes back and catches up.
func TestComposeNATSCluster(t *testing.T) {
	start := time.Now()
	s := newComposeStack(t, "cluster", "compose.yaml", "compose.sim.yaml", "compose.cluster.yaml")

	s.must(5*time.Minute, "up", "--detach", "--wait", "--wait-timeout", "180", "--scale", "runner=3")
	t.Logf("cluster stack up and healthy after %s", time.Since(start).Round(time.Millisecond))
	servers := s.natsURLs("nats", "nats-2", "nats-3")

	for _, stream := range []string{"SGTUNE_CANDIDATES", "SGTUNE_TRIALS", "SGTUNE_OUTCOMES", "KV_pareto"} {
		s.waitFor(time.Minute, stream+" to exist", func() bool {
			_, err := s.nats(servers, "stream", "info", stream, "--json")
			return err == nil
		})
		if r := s.composeStreamInfo(servers, stream).Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas, want 3", stream, r)
		}
	}

	// Mid-study: a third of the budget benchmarked.
	s.waitFor(3*time.Minute, "a third of the study", func() bool {
		doc, _, ok := s.readFront(servers)
		return ok && doc.NTrials >= s.budget/3
	})
	leader := s.composeStreamInfo(servers, "SGTUNE_OUTCOMES").Cluster.Leader
	service := map[string]string{"nats-1": "nats", "nats-2": "nats-2", "nats-3": "nats-3"}[leader]
	if service == "" {
		t.Fatalf("unknown leader %q of SGTUNE_OUTCOMES", leader)
	}
	doc, _, _ := s.readFront(servers)
	s.must(2*time.Minute, "stop", service)
	t.Logf("stopped NATS node %s (leader of SGTUNE_OUTCOMES) at %d/%d trials, after %s",
		leader, doc.NTrials, s.budget, time.Since(start).Round(time.Millisecond))
	var alive []string
	for _, svc := range []string{"nats", "nats-2", "nats-3"} {
		if svc != service {
			alive = append(alive, svc)
		}
	}
	servers = s.natsURLs(alive...)

	s.waitSampler(servers, 5*time.Minute)
	t.Logf("study complete on two nodes after %s", time.Since(start).Round(time.Millisecond))
	s.checkStudy(servers)

	// The stopped node comes back and catches up with the study's record.
	s.must(2*time.Minute, "start", service)
	servers = s.natsURLs("nats", "nats-2", "nats-3")
	s.waitFor(2*time.Minute, leader+" to catch up on SGTUNE_OUTCOMES", func() bool {
		var info composeStreamInfo
		out, err := s.nats(servers, "stream", "info", "SGTUNE_OUTCOMES", "--json")
		if err != nil || json.Unmarshal([]byte(out), &info) != nil || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
	t.Logf("scenario done in %s", time.Since(start).Round(time.Millisecond))
}

func composeTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestComposeTLS runs NATS with TLS (compose.tls.yaml) and one service that must
// reach it through tls://nats with the CA from NATS_CERTS_DIR: the validator
// provisions the streams only if its TLS connection works. A client without
// TLS is refused.
func TestComposeTLS(t *testing.T) {
	s := newComposeStack(t, "tls", "compose.yaml", "compose.sim.yaml", "compose.tls.yaml")
	certs := t.TempDir()
	writeComposeCerts(t, certs)
	s.env = append(s.env, "NATS_CERTS_DIR="+certs)
	s.must(3*time.Minute, "up", "--detach", "--wait", "--wait-timeout", "120", "nats", "validator")
	addr := strings.TrimPrefix(s.natsURLs("nats"), "nats://")
	var out string
	s.waitFor(time.Minute, "the validator to provision the streams over TLS", func() bool {
		var err error
		out, err = s.nats("tls://"+addr, "--tlsca", filepath.Join(certs, "ca.pem"), "stream", "ls", "--names")
		return err == nil && strings.Contains(out, "SGTUNE_TRIALS")
	})
	if out, err := s.nats("nats://"+addr, "stream", "ls", "--names"); err == nil {
		t.Errorf("a client without TLS was served:\n%s", out)
	}
}

// writeComposeCerts writes ca.pem, server-cert.pem and server-key.pem for the
// names the server answers to (nats in the network, 127.0.0.1 for the host).
// The key is world-readable: the containers run as uid 65532.
func writeComposeCerts(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sgtune e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"nats", "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":          {Type: "CERTIFICATE", Bytes: caDER},
		"server-cert.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server-key.pem":  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestComposeReadmePath follows the README's compose path with its own make
// targets, as a new user would: `make compose-up` (images, Compose v2 when
// missing, a deploy/.env with a random NATS password, the stack up and
// healthy, a NATS CLI context file), the front read with the NATS CLI through
// that context, `make compose-up` again once the study is complete (it must
// not fail: the sampler lingers), and `make compose-down`. The env file and
// the context file are the test's own, so a developer's deploy/.env is not
// touched.
func TestComposeReadmePath(t *testing.T) {
	repo, err := filepath.Abs(composeEnvOr("SGTUNE_REPO", ".."))
	if err != nil {
		t.Fatal(err)
	}
	natsCLI := composeEnvOr("NATS_CLI", "nats")
	dir := t.TempDir()
	envFile := filepath.Join(dir, "compose.env") // absent: make compose-up creates it
	ctxFile := filepath.Join(dir, "nats-context.json")
	project := fmt.Sprintf("sgtune-e2e-readme-%d", os.Getpid())
	const budget = 8
	makeVars := []string{"COMPOSE_ENV_FILE=" + envFile, "NATS_CONTEXT_FILE=" + ctxFile, "COMPOSE_RUNNERS=2"}
	env := append(os.Environ(),
		"COMPOSE_PROJECT_NAME="+project, "NATS_HOST_PORT=0", "XDG_CONFIG_HOME="+t.TempDir(),
		"SGTUNE_SPEC_FILE="+composeSpec, "SGTUNE_N_TRIALS="+strconv.Itoa(budget), "SIM_TIME_SCALE=0.05", "SIM_GPUS=2",
	)
	run := func(timeout time.Duration, name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	makeTarget := func(timeout time.Duration, target string) string {
		t.Helper()
		out, err := run(timeout, "make", append([]string{"--no-print-directory", target}, makeVars...)...)
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		return out
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := run(time.Minute, "make", append([]string{"--no-print-directory", "compose-ps"}, makeVars...)...)
			t.Logf("make compose-ps:\n%s", out)
		}
		if out, err := run(3*time.Minute, "make", append([]string{"--no-print-directory", "compose-down"}, makeVars...)...); err != nil {
			t.Errorf("make compose-down: %v\n%s", err, out)
		}
	})

	out := makeTarget(15*time.Minute, "compose-up")
	if !strings.Contains(out, "wrote "+envFile+" with a new random NATS_PASSWORD") || !strings.Contains(out, "wrote "+ctxFile) {
		t.Fatalf("make compose-up did not write the env file and the context:\n%s", out)
	}
	if st, err := os.Stat(ctxFile); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("context file %v: %v (it holds the password: want mode 0600)", st, err)
	}
	nats := func(args ...string) (string, error) {
		return run(time.Minute, natsCLI, append([]string{"--context", ctxFile, "--timeout", "10s"}, args...)...)
	}
	type studyState struct {
		Status   string `json:"status"`
		Proposed int    `json:"proposed"`
	}
	var st studyState
	deadline := time.Now().Add(10 * time.Minute)
	for {
		out, err := nats("kv", "get", "sgtune_studies", composeStudy, "--raw")
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == "complete" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the study did not complete in 10 minutes: %v %s", err, out)
		}
		time.Sleep(2 * time.Second)
	}
	// The README's read of the front: the NATS CLI with the documented context.
	var front struct {
		StudyName   string            `json:"study_name"`
		NTrials     int               `json:"n_trials"`
		ParetoFront []json.RawMessage `json:"pareto_front"`
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		raw, err := nats("kv", "get", "pareto", "front", "--raw")
		if err == nil && json.Unmarshal([]byte(raw), &front) == nil && front.NTrials == budget {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats kv get pareto front: %v\n%s", err, raw)
		}
		time.Sleep(time.Second)
	}
	if front.StudyName != composeStudy || len(front.ParetoFront) == 0 {
		t.Fatalf("front: %+v", front)
	}
	if out := makeTarget(time.Minute, "compose-front"); !strings.Contains(out, `"study_name":"`+composeStudy+`"`) {
		t.Fatalf("make compose-front:\n%s", out)
	}
	// Again, after the study finished: up --wait succeeds and runs nothing more.
	makeTarget(10*time.Minute, "compose-up")
	var again studyState
	out, err = nats("kv", "get", "sgtune_studies", composeStudy, "--raw")
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || again.Status != "complete" || again.Proposed != st.Proposed {
		t.Fatalf("after compose-up again: %v %s (before: %+v)", err, out, st)
	}
	t.Logf("README path: front of %d members after %d trials; compose-up again kept the study (%d proposals)",
		len(front.ParetoFront), front.NTrials, again.Proposed)
}
