package validator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NATS_URL": "nats://n:4222", "SGTUNE_DEVICE_NUM": "4", "SGTUNE_FLEET_REFRESH": "1s", "SGTUNE_FLEET_WAIT": "2m"}
	cfg, err := validator.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://n:4222" || cfg.DeviceNum != 4 || cfg.Workers != 4 || cfg.FleetRefresh != time.Second || cfg.FleetWait != 2*time.Minute || cfg.NATS.Name == "" {
		t.Fatalf("unexpected config %+v", cfg)
	}
	for _, bad := range []map[string]string{{"SGTUNE_DEVICE_NUM": "eight"}, {"SGTUNE_VALIDATOR_WORKERS": "-1"}, {"SGTUNE_FLEET_REFRESH": "soon"}, {"SGTUNE_FLEET_WAIT": "-1s"}} {
		if _, err := validator.LoadConfig(func(k string) string { return bad[k] }); !errors.Is(err, validator.ErrInvalidConfig) {
			t.Errorf("%v: want ErrInvalidConfig, got %v", bad, err)
		}
	}
}

// harness runs the validator service against an embedded JetStream server.
type harness struct {
	t  *testing.T
	js jetstream.JetStream
	nc *nats.Conn
}

func startValidator(t *testing.T) *harness {
	t.Helper()
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- validator.Run(ctx, validator.Config{
			NATS:       natsx.ConnConfig{URL: srv.ClientURL()},
			Workers:    2,
			StudyRetry: 100 * time.Millisecond,
		}, zerolog.New(t.Output()).Level(zerolog.InfoLevel))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return &harness{t: t, js: js, nc: nc}
}

func (h *harness) putStudy(spec study.Spec) {
	h.t.Helper()
	raw, err := spec.ToJSON()
	if err != nil {
		h.t.Fatal(err)
	}
	kv, err := natsx.KV(context.Background(), h.js, events.BucketStudies)
	if err != nil {
		h.t.Fatal(err)
	}
	st := events.StudyState{Study: spec.StudyName, Spec: raw, NTrials: spec.NTrials, Status: events.StudyRunning, StartedAt: time.Now()}
	if err := natsx.PutJSON(context.Background(), kv, spec.StudyName, st); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) propose(studyName string, trial int, p events.Params) {
	h.t.Helper()
	ev := events.CandidateProposed{
		Envelope: events.NewEnvelope(events.TypeCandidateProposed, studyName, trial, time.Now()),
		Params:   p, Sampler: "random",
	}
	if _, err := natsx.Publish(context.Background(), h.js, events.CandidateSubject(studyName, trial), ev); err != nil {
		h.t.Fatal(err)
	}
}

// last waits for a message on subject in stream.
func (h *harness) last(stream, subject string) []byte {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, ok, err := natsx.LastOnSubject(context.Background(), h.js, stream, subject)
		if err != nil {
			h.t.Fatal(err)
		}
		if ok {
			return data
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("nothing arrived on %s in %s", subject, stream)
	return nil
}

func (h *harness) rejection(studyName string, trial int) events.CandidateRejected {
	h.t.Helper()
	r, err := events.Decode[events.CandidateRejected](h.last(events.StreamOutcomes, events.OutcomeSubject(studyName, trial)), events.TypeCandidateRejected)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) queued(studyName string, gpus, trial int) events.TrialQueued {
	h.t.Helper()
	q, err := events.Decode[events.TrialQueued](h.last(events.StreamTrials, events.TrialSubject(studyName, gpus, trial)), events.TypeTrialQueued)
	if err != nil {
		h.t.Fatal(err)
	}
	return q
}

func (h *harness) count(stream, subject string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func seedCandidate() events.Params {
	return events.Params{
		"tp_size": 1, "attention_backend": "flashinfer", "chunked_prefill_size": 4096, "max_prefill_tokens": 16384,
		"dp_size": 1, "schedule_policy": "lpm", "pp_size": 1, "decode_attention_backend": nil,
		"prefill_attention_backend": nil, "page_size": 16, "cuda_graph_max_bs": 64, "enable_mixed_chunk": false,
		"disable_overlap_schedule": false, "enable_torch_compile": false, "num_continuous_decode_steps": 1,
		"enable_two_batch_overlap": false, "tokenizer_worker_num": 1, "sampling_backend": nil,
	}
}

func with(p events.Params, kv ...any) events.Params {
	out := make(events.Params, len(p))
	for k, v := range p {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestRun_validates_candidates(t *testing.T) {
	h := startValidator(t)
	spec := study.Default()
	spec.StudyName = "s1"
	spec.Rules.Sets = []string{"seed"} // no fleet needed; TestRun_waits_for_the_study_and_uses_the_fleet runs the default sets
	spec.Model.StaticArgs = map[string]any{"mem_fraction_static": 0.85}
	h.putStudy(spec)

	// A valid candidate becomes a trial on its GPU class with SGLang's flags.
	h.propose("s1", 0, with(seedCandidate(), "tp_size", 2))
	q := h.queued("s1", 2, 0)
	if q.GPUs != 2 || q.CanonicalHash == "" || q.Workload.NumPrompts != spec.Workload.NumPrompts || q.Timeouts.Startup.D() != 10*time.Minute {
		t.Fatalf("bad trial %+v", q)
	}
	wantArgs := []string{"--model-path", spec.Model.Path, "--tp-size", "2", "--attention-backend", "flashinfer",
		"--chunked-prefill-size", "4096", "--max-prefill-tokens", "16384", "--schedule-policy", "lpm",
		"--page-size", "16", "--cuda-graph-max-bs", "64", "--num-continuous-decode-steps", "1",
		"--tokenizer-worker-num", "1", "--mem-fraction-static", "0.85"}
	for _, a := range wantArgs {
		if !slices.Contains(q.ServerArgs, a) {
			t.Fatalf("server args %v lack %q", q.ServerArgs, a)
		}
	}
	if q.ServerArgs[0] != "--model-path" || slices.Contains(q.ServerArgs, "None") || slices.Contains(q.ServerArgs, "--enable-mixed-chunk") {
		t.Fatalf("server args %v", q.ServerArgs)
	}

	// An invalid one is rejected with every failing rule and readable reasons.
	h.propose("s1", 1, with(seedCandidate(), "tp_size", 2, "pp_size", 8, "dp_size", 8, "cuda_graph_max_bs", 96))
	r := h.rejection("s1", 1)
	var ids []string
	for _, rej := range r.Rejections {
		ids = append(ids, rej.Rule)
		if rej.Reason == "" || rej.RuleSet != "seed" {
			t.Errorf("bad rejection %+v", rej)
		}
	}
	if !slices.Equal(ids, []string{"seed.gpu_count", "seed.pp_dp_cap", "seed.dp_graph_bs"}) {
		t.Fatalf("rules %v", ids)
	}
	if !strings.Contains(r.Rejections[0].Reason, "2 × 8 × 8 = 128 GPUs, but device_num allows 8") || r.DuplicateOf != nil {
		t.Fatalf("reason %q", r.Rejections[0].Reason)
	}

	// A candidate SGLang would run exactly like trial 0 is a duplicate of it.
	h.propose("s1", 2, with(seedCandidate(), "tp_size", 2, "max_prefill_tokens", nil))
	d := h.rejection("s1", 2)
	if d.DuplicateOf == nil || *d.DuplicateOf != 0 || len(d.Rejections) != 1 || d.Rejections[0].Rule != "dedup.canonical" || d.CanonicalHash != q.CanonicalHash {
		t.Fatalf("want a duplicate of trial 0, got %+v", d)
	}
	// ... unless it is a deliberate repeat.
	rep := events.CandidateProposed{
		Envelope: events.NewEnvelope(events.TypeCandidateProposed, "s1", 3, time.Now()),
		Params:   with(seedCandidate(), "tp_size", 2), Sampler: "repeat", RepeatOf: new(0),
	}
	if _, err := natsx.Publish(context.Background(), h.js, events.CandidateSubject("s1", 3), rep); err != nil {
		t.Fatal(err)
	}
	h.queued("s1", 2, 3)

	// A malformed message is dead-lettered and terminated, not redelivered.
	if _, err := h.js.Publish(context.Background(), events.CandidateSubject("s1", 4), []byte("{not json"), jetstream.WithMsgID("bad-4")); err != nil {
		t.Fatal(err)
	}
	var dl events.DeadLetter
	if err := json.Unmarshal(h.last(events.StreamDeadLetters, events.DeadLetterSubject(events.StreamCandidates)), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Subject != events.CandidateSubject("s1", 4) || dl.Reason == "" || string(dl.Data) != "{not json" {
		t.Fatalf("dead letter %+v", dl)
	}

	// A redelivered candidate (same trial, new message) is acked without a second outcome or trial.
	for trial, p := range []events.Params{with(seedCandidate(), "tp_size", 2), with(seedCandidate(), "tp_size", 2, "pp_size", 8, "dp_size", 8, "cuda_graph_max_bs", 96)} {
		raw, _ := json.Marshal(events.CandidateProposed{
			Envelope: events.NewEnvelope(events.TypeCandidateProposed, "s1", trial, time.Now()),
			Params:   p, Sampler: "random",
		})
		if _, err := h.js.Publish(context.Background(), events.CandidateSubject("s1", trial), raw, jetstream.WithMsgID(fmt.Sprintf("again-%d", trial))); err != nil {
			t.Fatal(err)
		}
	}
	waitConsumerIdle(t, h.js)
	if n := h.count(events.StreamOutcomes, events.OutcomeSubject("s1", 1)); n != 1 {
		t.Fatalf("trial 1 has %d outcomes", n)
	}
	if n := h.count(events.StreamOutcomes, events.OutcomeSubject("s1", 0)); n != 0 {
		t.Fatalf("queued trial 0 got an outcome on redelivery (%d)", n)
	}
	if n := h.count(events.StreamTrials, events.TrialSubject("s1", 2, 0)); n != 1 {
		t.Fatalf("trial 0 queued %d times", n)
	}
	if n := h.count(events.StreamDeadLetters, events.DeadLetterSubject(events.StreamCandidates)); n != 1 {
		t.Fatalf("%d dead letters, want only the malformed one", n)
	}
}

func TestRun_waits_for_the_study_and_uses_the_fleet(t *testing.T) {
	h := startValidator(t)
	spec := study.Default()
	spec.StudyName = "late"
	spec.Rules.Sets = []string{"seed", "sglang", "hardware"}

	// The candidate arrives before its study: it is retried, not lost.
	h.propose("late", 0, seedCandidate())
	h.propose("late", 1, with(seedCandidate(), "tp_size", 4, "attention_backend", "fa3"))
	h.waitRedelivered()
	kv, err := natsx.KV(context.Background(), h.js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	gpu := events.GPU{Name: "NVIDIA A10", MemoryTotalBytes: 24 << 30, ComputeCapability: "8.6"}
	if err := natsx.PutJSON(context.Background(), kv, "r1", events.RunnerStatus{Runner: "r1", Host: "box", GPUs: []events.GPU{gpu, gpu}, Slots: 1}); err != nil {
		t.Fatal(err)
	}
	h.putStudy(spec)

	h.queued("late", 1, 0)
	r := h.rejection("late", 1)
	if len(r.Rejections) != 1 || r.Rejections[0].Rule != "hardware.gpu_count" ||
		!strings.Contains(r.Rejections[0].Reason, "= 4 GPUs, but no live host can give one trial more than 2 (hosts considered: r1@box: 2 × NVIDIA A10 (sm86, 24 GiB))") {
		t.Fatalf("want hardware.gpu_count, got %+v", r.Rejections)
	}
}

// waitRedelivered waits until the validator has taken a candidate and handed
// it back for a retry (the consumer counts it as redelivered).
func (h *harness) waitRedelivered() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := h.js.Consumer(context.Background(), events.StreamCandidates, events.DurableValidator)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.NumRedelivered > 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatal("the validator never retried a candidate of a study it does not know yet")
}

// waitConsumerIdle waits until the validator has nothing pending or unacked.
func waitConsumerIdle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(context.Background(), events.StreamCandidates, events.DurableValidator)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("validator consumer did not go idle")
}
