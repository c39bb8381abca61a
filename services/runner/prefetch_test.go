package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
)

// fakeSGLangPython is a host's SGLang interpreter, without weights or a
// network: `python3 -m sglang.launch_server ...` runs sglang-sim, and
// `python3 -c <script> repo revision cache` acts like huggingface_hub on
// the cache as the runner's prefetch script asks. The file MODE decides the
// download: "slow" waits until the file RELEASE exists, "fail" refuses.
const fakeSGLangPython = `#!/bin/sh
if [ "$1" = "-m" ]; then shift 2; SGTUNE_SIM_TIME_SCALE=0.001 SGTUNE_SIM_SEED=1 exec %q sim "$@"; fi
[ "$1" = "-c" ] || exit 2
repo="$3"; dir="$HF_HUB_CACHE/models--$(echo "$repo" | sed 's|/|--|g')/snapshots/r1"
if [ -f "$dir/config.json" ]; then echo "sgtune-prefetch: cached at $dir"; exit 0; fi
case "$(cat %q)" in
fail) echo "sgtune-prefetch: GatedRepoError: 403 Client Error: access to model $repo is restricted" >&2; exit 1;;
esac
echo "download $repo" >> %q
echo "sgtune-prefetch: downloading $repo"
while [ ! -f %q ]; do printf 'model-00001-of-00004.safetensors:  40%%%%|####      |\r' >&2; sleep 0.1; done
mkdir -p "$dir" && echo '{}' > "$dir/config.json"
echo "sgtune-prefetch: downloaded to $dir"
`

type prefetchHost struct {
	dir, python, mode, release, downloads string
}

func newPrefetchHost(t *testing.T, mode string) prefetchHost {
	t.Helper()
	dir := t.TempDir()
	h := prefetchHost{dir: dir, python: filepath.Join(dir, "python3"), mode: filepath.Join(dir, "MODE"),
		release: filepath.Join(dir, "RELEASE"), downloads: filepath.Join(dir, "downloads.log")}
	script := fmt.Sprintf(fakeSGLangPython, sgtuneBinary(t), h.mode, h.downloads, h.release)
	if err := os.WriteFile(h.python, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.mode, []byte(mode), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// startPrefetchRunner runs a runner with real-SGLang settings (no --sim:
// the model is fetched before any claim) on a simulated 2-GPU inventory,
// after a running study serving org/model-8b was registered.
func startPrefetchRunner(t *testing.T, h prefetchHost, id string) (*server.Server, func() events.RunnerStatus) {
	t.Helper()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	spec := study.Default()
	spec.StudyName, spec.Model.Path = "pf", "org/model-8b"
	raw, err := spec.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(events.StudyState{Study: "pf", Spec: raw, NTrials: 1, Status: events.StudyRunning})
	if _, err := studies.Put(ctx, "pf", st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", filepath.Join(h.dir, "hub")) // the host's cache, inherited by the fake python
	cfg := Config{
		NATS: natsx.ConnConfig{URL: srv.ClientURL()}, RunnerID: id, GPUs: 2, LogDir: t.TempDir(),
		ServerCommand: []string{h.python, "-m", "sglang.launch_server"}, AckWait: 5 * time.Second,
		HeartbeatEvery: 100 * time.Millisecond,
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(rctx, cfg, zerolog.New(zerolog.NewTestWriter(t))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	fleet, err := natsx.KV(ctx, js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	status := func() events.RunnerStatus {
		s, _, _ := natsx.GetJSON[events.RunnerStatus](ctx, fleet, id)
		return s
	}
	q := events.TrialQueued{
		Envelope: events.NewEnvelope(events.TypeTrialQueued, "pf", 0, time.Now()), GPUs: 1,
		Params:     events.Params{"tp_size": 1.0},
		ServerArgs: []string{"--model-path", "org/model-8b"},
		Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 4, RandomInputLen: 16,
			RandomOutputLen: 4, RandomRangeRatio: 1, MaxConcurrency: 2, Seed: 1, IgnoreEOS: true},
		Timeouts: events.Timeouts{Startup: events.Duration(30 * time.Second), Benchmark: events.Duration(30 * time.Second),
			Shutdown: events.Duration(5 * time.Second)},
	}
	if _, err := natsx.Publish(ctx, js, events.TrialSubject("pf", 1, 0), q); err != nil {
		t.Fatal(err)
	}
	return srv, status
}

func outcomeOf(t *testing.T, srv *server.Server) (events.TrialResult, bool) {
	t.Helper()
	_, js := natstest.Connect(t, srv)
	data, ok, err := natsx.LastOnSubject(context.Background(), js, events.StreamOutcomes, events.OutcomeSubject("pf", 0))
	if err != nil || !ok {
		return events.TrialResult{}, false
	}
	var r events.TrialResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r, true
}

// TestRunner_fetches_the_model_before_claiming: the download runs through
// the server command's python before any trial is claimed; meanwhile the
// fleet entry says not ready and why, and the queued trial waits (no
// config is charged for the download); once the model is in the cache the
// trial runs and completes.
func TestRunner_fetches_the_model_before_claiming(t *testing.T) {
	if testing.Short() {
		t.Skip("launches processes")
	}
	h := newPrefetchHost(t, "slow")
	srv, status := startPrefetchRunner(t, h, "pf-slow")
	var st events.RunnerStatus
	waitUntil(t, 20*time.Second, "the runner to say it is fetching the model", func() bool {
		st = status()
		return strings.Contains(st.NotReadyReason, "fetching model org/model-8b")
	})
	if st.Ready || st.Busy != 0 {
		t.Fatalf("fleet entry while downloading: %+v", st)
	}
	if _, ok := outcomeOf(t, srv); ok {
		t.Fatal("a trial ran while the model was downloading")
	}
	if err := os.WriteFile(h.release, nil, 0o644); err != nil { // the download finishes
		t.Fatal(err)
	}
	var res events.TrialResult
	waitUntil(t, 60*time.Second, "the trial's result", func() bool {
		var ok bool
		res, ok = outcomeOf(t, srv)
		return ok
	})
	if res.State != events.StateComplete || res.ModelPathLoaded != "org/model-8b" {
		t.Fatalf("result %s %s %s", res.State, res.FailureClass, res.Reason)
	}
	if st := status(); !st.Ready || st.NotReadyReason != "" {
		t.Fatalf("fleet entry after the download: %+v", st)
	}
	if b, _ := os.ReadFile(h.downloads); strings.Count(string(b), "download ") != 1 {
		t.Fatalf("downloads: %q", b)
	}
}

// TestRunner_a_host_without_the_model_is_not_ready: a download the hub
// refuses leaves the runner not ready with the reason, and the trial queued,
// not failed.
func TestRunner_a_host_without_the_model_is_not_ready(t *testing.T) {
	if testing.Short() {
		t.Skip("launches processes")
	}
	h := newPrefetchHost(t, "fail")
	srv, status := startPrefetchRunner(t, h, "pf-fail")
	var st events.RunnerStatus
	waitUntil(t, 20*time.Second, "the refusal in the fleet entry", func() bool {
		st = status()
		return strings.Contains(st.NotReadyReason, "403 Client Error")
	})
	if st.Ready || !strings.Contains(st.NotReadyReason, "org/model-8b is not on this host") {
		t.Fatalf("fleet entry %+v", st)
	}
	if res, ok := outcomeOf(t, srv); ok {
		t.Fatalf("the trial was recorded (%s %s) instead of waiting for a host with the model", res.State, res.FailureClass)
	}
}
