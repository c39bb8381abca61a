package reporter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name      string
		env       map[string]string
		expected  reporter.Config
		withError error
	}{
		{name: "defaults", env: map[string]string{}, expected: reporter.Config{Replicas: 1}},
		{name: "everything", env: map[string]string{
			"NATS_URL": "nats://n:4222", "SGTUNE_REPLICAS": "3", "SGTUNE_REPORTER_OUTPUT": filepath.Join(dir, "r-{study}.json"), "SGTUNE_REPORTER_QUIET": "true",
		}, expected: reporter.Config{Replicas: 3, Output: filepath.Join(dir, "r-{study}.json"), Quiet: true}},
		{name: "bad replicas", env: map[string]string{"SGTUNE_REPLICAS": "x"}, withError: reporter.ErrInvalidConfig},
		{name: "too many replicas", env: map[string]string{"SGTUNE_REPLICAS": "7"}, withError: reporter.ErrInvalidConfig},
		{name: "output in a missing directory", env: map[string]string{"SGTUNE_REPORTER_OUTPUT": filepath.Join(dir, "no", "r.json")}, withError: reporter.ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := reporter.LoadConfig(func(k string) string { return tc.env[k] })
			if tc.withError != nil {
				if !errors.Is(err, tc.withError) {
					t.Fatalf("err = %v, want %v", err, tc.withError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Replicas != tc.expected.Replicas || cfg.Output != tc.expected.Output || cfg.Quiet != tc.expected.Quiet || cfg.NATS.Name != "sgtune-reporter" {
				t.Fatalf("got %+v", cfg)
			}
		})
	}
}

// harness runs the reporter against an embedded server.
type harness struct {
	t      *testing.T
	srv    *server.Server
	js     jetstream.JetStream
	output string
	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	cfg := reporter.Config{NATS: natsx.ConnConfig{URL: h.srv.ClientURL()}, Output: h.output, Stdout: h.stdout}
	go func() { h.done <- reporter.Run(ctx, cfg, zerolog.New(h.t.Output()).Level(zerolog.InfoLevel)) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Errorf("Run did not stop")
	}
	h.cancel = nil
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) publish(ev events.Event) {
	h.t.Helper()
	if err := natsx.PublishOnce(h.ctx(), h.js, events.OutcomeSubject(ev.Head().Study, ev.Head().Trial), ev); err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

// waitFor polls until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (h *harness) kv(bucket string) jetstream.KeyValue {
	h.t.Helper()
	kv, err := h.js.KeyValue(h.ctx(), bucket)
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

// raw returns the stored front bytes and revision (nil when absent).
func (h *harness) raw(key string) ([]byte, uint64) {
	e, err := h.kv(events.BucketPareto).Get(h.ctx(), key)
	if err != nil {
		return nil, 0
	}
	return e.Value(), e.Revision()
}

// idle reports whether the reporter's consumer has handled everything.
func (h *harness) idle() bool {
	c, err := h.js.Consumer(h.ctx(), events.StreamOutcomes, events.DurableReporter)
	if err != nil {
		return false
	}
	info, err := c.Info(h.ctx())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

func result(trial int, ttftMs, tps float64) *events.TrialResult {
	return &events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, "s1", trial, t0.Add(time.Duration(trial)*time.Minute)),
		Params:   events.Params{"tp_size": 1.0, "schedule_policy": "lpm", "page_size": nil},
		State:    events.StateComplete, Runner: "r1", Backend: "sim", GPUModel: "NVIDIA H100 \u2013 80GB",
		Metrics:       map[string]float64{"mean_ttft_ms": ttftMs, "output_throughput": tps, "p99_ttft_ms": 2 * ttftMs},
		Units:         map[string]string{"mean_ttft_ms": "ms", "output_throughput": "tok/s", "p99_ttft_ms": "ms"},
		LaunchCommand: []string{"python3", "-m", "sglang.launch_server", "--model-path", "m", "--tp-size", "1"},
	}
}

func TestReporterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	dir := t.TempDir()
	h := &harness{t: t, srv: srv, js: js, output: filepath.Join(dir, "optuna_results.json"), stdout: &syncBuffer{}}

	spec := study.Default()
	spec.StudyName = "s1"
	specJSON, err := spec.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.PutJSON(h.ctx(), h.kv(events.BucketStudies), "s1",
		events.StudyState{Study: "s1", Spec: specJSON, NTrials: 10, Status: events.StudyRunning, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	failed := &events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, "s1", 2, t0.Add(2*time.Minute)),
		Params:   events.Params{"tp_size": 8.0}, State: events.StateFailed, FailureClass: events.FailOOM, Reason: "CUDA OOM", Runner: "r1",
	}
	rejected := &events.CandidateRejected{
		Envelope:   events.NewEnvelope(events.TypeCandidateRejected, "s1", 3, t0.Add(3*time.Minute)),
		Params:     events.Params{"tp_size": 8.0, "dp_size": 8.0},
		Rejections: []events.Rejection{{Rule: "seed.gpu_count", RuleSet: "seed", Reason: "tp*pp*dp = 64 > 8 GPUs"}},
	}
	for _, ev := range []events.Event{result(0, 50, 1000), result(1, 30, 1500), failed, rejected, result(4, 20, 1200)} {
		h.publish(ev)
	}
	h.start()

	// The front appears, as one line of printable ASCII, with the expected
	// members. The bytes checked are the bytes decoded: reading the key twice
	// (once raw, once decoded) could see two revisions while the reporter is
	// still folding, and check an older front than the one that passed.
	var value []byte
	h.waitFor("pareto/front with 4 benchmarked trials", func() bool {
		value, _ = h.raw(events.KeyFront)
		var d reporter.FrontDoc
		return value != nil && json.Unmarshal(value, &d) == nil && d.NTrials == 4
	})
	for i, c := range value {
		if c < 0x20 || c > 0x7E {
			t.Fatalf("pareto/front byte %d is %#x: natscli would print base64", i, c)
		}
	}
	doc, err := reporter.ReadFront(h.ctx(), js, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got := members(doc); got != "1,4" || doc.Counts.Rejected != 1 || doc.Counts.FailedByClass["oom"] != 1 ||
		doc.ParetoFront[1].GPUModel != "NVIDIA H100 \u2013 80GB" || *doc.ParetoFront[0].TTFT != 0.03 || doc.Baseline == nil {
		t.Fatalf("front = %s", value)
	}
	if !strings.HasPrefix(string(value), `{"study_name":"s1","n_trials":4,"pareto_front":[{"trial_number":1,"ttft":0.03,"tps":1500,`) {
		t.Fatalf("front does not start with the seed's fields: %.120s", value)
	}

	// A duplicate outcome (same trial, delivered again) changes nothing.
	h.waitFor("the consumer to be idle", h.idle)
	_, rev := h.raw(events.FrontKey("s1"))
	dup, err := jsonOf(result(1, 30, 1500))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(h.ctx(), events.OutcomeSubject("s1", 1), dup); err != nil {
		t.Fatal(err)
	}
	// A malformed message is dead-lettered.
	if _, err := js.Publish(h.ctx(), events.OutcomeSubject("s1", 99), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the malformed outcome in the dead-letter stream", func() bool {
		s, err := js.Stream(h.ctx(), events.StreamDeadLetters)
		if err != nil {
			return false
		}
		_, err = s.GetLastMsgForSubject(h.ctx(), events.DeadLetterSubject(events.StreamOutcomes))
		return err == nil
	})
	h.waitFor("the consumer to be idle", h.idle)
	if _, rev2 := h.raw(events.FrontKey("s1")); rev2 != rev {
		t.Fatalf("a duplicate outcome rewrote front.s1 (revision %d -> %d)", rev, rev2)
	}

	// The results file has every trial.
	var results reporter.ResultsDoc
	readJSON(t, h.output, &results)
	if len(results.Trials) != 5 || len(results.HypervolumeHistory) != 4 || results.Trials[3].Reason == "" {
		t.Fatalf("results file: %d trials, %d history points", len(results.Trials), len(results.HypervolumeHistory))
	}

	// Stopping prints the summary.
	h.stop()
	if out := h.stdout.String(); !strings.Contains(out, "Number of Pareto optimal solutions: 2") || !strings.Contains(out, "seed.gpu_count: 1") {
		t.Fatalf("console summary:\n%s", out)
	}

	// Restart with the consumer's position kept: the next outcome rebuilds the
	// report from the stream, so the front still counts the earlier trials.
	h.start()
	h.publish(result(5, 10, 900))
	h.waitFor("front.s1 with trial 5", func() bool {
		d, err := reporter.ReadFront(h.ctx(), js, "s1")
		return err == nil && d.NTrials == 5
	})
	h.waitFor("the consumer to be idle", h.idle)
	before, _ := h.raw(events.FrontKey("s1"))
	if d, _ := reporter.ReadFront(h.ctx(), js, "s1"); members(d) != "1,4,5" {
		t.Fatalf("front after restart: %s", before)
	}
	h.stop()

	// Restart from nothing but the stream: no consumer, no KV front. The
	// rebuilt front is byte for byte the same.
	if err := js.DeleteConsumer(h.ctx(), events.StreamOutcomes, events.DurableReporter); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{events.KeyFront, events.FrontKey("s1")} {
		if err := h.kv(events.BucketPareto).Purge(h.ctx(), key); err != nil {
			t.Fatal(err)
		}
	}
	h.start()
	h.waitFor("front.s1 rebuilt", func() bool {
		b, _ := h.raw(events.FrontKey("s1"))
		return bytes.Equal(b, before)
	})
	h.waitFor("the consumer to be idle", h.idle)
	if b, _ := h.raw(events.KeyFront); !bytes.Equal(b, before) {
		t.Fatalf("pareto/front after rebuild:\n%s\nwant\n%s", b, before)
	}
	h.stop()

	// WriteResults rebuilds the same results file without a reporter.
	rebuilt := filepath.Join(dir, "rebuilt.json")
	if err := reporter.WriteResults(h.ctx(), js, "", rebuilt); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(h.output)
	got, _ := os.ReadFile(rebuilt)
	if !bytes.Equal(got, want) {
		t.Fatalf("WriteResults differs from the reporter's file")
	}
	if err := reporter.WriteResults(h.ctx(), js, "nope", rebuilt); !errors.Is(err, reporter.ErrStudyNotFound) {
		t.Fatalf("unknown study: %v", err)
	}
}

func TestReadFrontMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	if _, err := reporter.ReadFront(context.Background(), js, "nope"); !errors.Is(err, reporter.ErrNoFront) {
		t.Fatalf("err = %v, want ErrNoFront", err)
	}
}

func members(d reporter.FrontDoc) string {
	var out []string
	for _, m := range d.ParetoFront {
		out = append(out, strconv.Itoa(m.TrialNumber))
	}
	return strings.Join(out, ",")
}
