package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
	"github.com/sgtune/sgtune/services/reporter/internal/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func kvFactory(t *testing.T) storetest.Factory {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	var n atomic.Int64
	return func(t *testing.T) app.FrontStore {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: fmt.Sprintf("pareto_test_%d", n.Add(1)), History: 5})
		if err != nil {
			t.Fatal(err)
		}
		return NewFrontStore(kv)
	}
}

func TestFrontStore(t *testing.T) { storetest.Run(t, kvFactory(t)) }

func TestFrontStoreConcurrentSafe(t *testing.T) { storetest.RunConcurrentSafe(t, kvFactory(t)) }

func result(study string, trial int, state string) events.TrialResult {
	return events.TrialResult{
		Envelope: events.NewEnvelope(events.TypeTrialResult, study, trial, t0),
		Params:   events.Params{"tp_size": 1.0}, State: state, Runner: "r1", Backend: "sim",
		Metrics: map[string]float64{"mean_ttft_ms": 25, "output_throughput": 2500},
	}
}

func rejection(study string, trial int) events.CandidateRejected {
	return events.CandidateRejected{
		Envelope:   events.NewEnvelope(events.TypeCandidateRejected, study, trial, t0),
		Params:     events.Params{"tp_size": 8.0, "dp_size": 8.0},
		Rejections: []events.Rejection{{Rule: "seed.gpu_count", RuleSet: "seed", Reason: "64 GPUs > 8"}},
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeOutcome(t *testing.T) {
	t.Parallel()
	bad := result("s1", 1, "RUNNING")
	noStudy := result("", 1, events.StateComplete)
	tests := []struct {
		name          string
		given         []byte
		expectedState string
		withError     error
	}{
		{name: "complete result", given: encode(t, result("s1", 1, events.StateComplete)), expectedState: front.StateComplete},
		{name: "failed result", given: encode(t, result("s1", 1, events.StateFailed)), expectedState: front.StateFailed},
		{name: "rejection", given: encode(t, rejection("s1", 2)), expectedState: front.StateRejected},
		{name: "not JSON", given: []byte("garbage"), withError: events.ErrMalformed},
		{name: "unknown type", given: []byte(`{"type":"trial.queued","study":"s1","trial":1}`), withError: events.ErrUnknownType},
		{name: "result with a bad state", given: encode(t, bad), withError: events.ErrMalformed},
		{name: "no study", given: encode(t, noStudy), withError: events.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := DecodeOutcome(tc.given)
			if tc.withError != nil {
				if !errors.Is(err, tc.withError) {
					t.Fatalf("err = %v, want %v", err, tc.withError)
				}
				return
			}
			if err != nil || o.State != tc.expectedState || o.Study != "s1" {
				t.Fatalf("got %+v, %v", o, err)
			}
		})
	}
}

type fakeService struct{ err error }

func (f fakeService) HandleOutcome(context.Context, front.Outcome) error { return f.err }

func TestHandlerDecisions(t *testing.T) {
	t.Parallel()
	good := encode(t, result("s1", 1, events.StateComplete))
	subject := events.OutcomeSubject("s1", 1)
	tests := []struct {
		name            string
		given           []byte
		subject         string
		serviceErr      error
		expectPermanent bool
		expectNil       bool
	}{
		{name: "handled", given: good, subject: subject, expectNil: true},
		{name: "malformed", given: []byte("{"), subject: subject, expectPermanent: true},
		{name: "subject mismatch", given: good, subject: events.OutcomeSubject("s1", 2), expectPermanent: true},
		{name: "bad spec", given: good, subject: subject, serviceErr: fmt.Errorf("x: %w", app.ErrBadSpec), expectPermanent: true},
		{name: "study not found", given: good, subject: subject, serviceErr: app.ErrStudyNotFound},
		{name: "kv down", given: good, subject: subject, serviceErr: errors.New("timeout")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := NewHandler(fakeService{tc.serviceErr}).Handle(context.Background(), tc.given, natsx.Meta{Subject: tc.subject, Delivered: 1})
			switch {
			case tc.expectNil && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case !tc.expectNil && err == nil:
				t.Fatal("want an error")
			case err != nil && natsx.IsPermanent(err) != tc.expectPermanent:
				t.Fatalf("permanent = %v, want %v (%v)", natsx.IsPermanent(err), tc.expectPermanent, err)
			}
		})
	}
}

func TestHistoryAndStudies(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	studies := NewStudies(js)
	if _, err := studies.Study(ctx, "s1"); !errors.Is(err, app.ErrStudyNotFound) {
		t.Fatalf("missing study: %v", err)
	}
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.PutJSON(ctx, kv, "bad", events.StudyState{Study: "bad", Spec: []byte(`{"n_trials": -1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := studies.Study(ctx, "bad"); !errors.Is(err, app.ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}

	for _, ev := range []events.Event{result("s1", 0, events.StateComplete), rejection("s1", 1), result("s2", 0, events.StateFailed)} {
		if err := natsx.PublishOnce(ctx, js, events.OutcomeSubject(ev.Head().Study, ev.Head().Trial), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish(events.OutcomeSubject("s1", 2), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, events.OutcomeSubject("s1", 3), encode(t, result("s1", 3, events.StateComplete))); err != nil {
		t.Fatal(err)
	}
	var got []int
	err = NewHistory(js, zerolog.New(t.Output())).Replay(ctx, "s1", func(o front.Outcome) error {
		got = append(got, o.Trial)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 3]" {
		t.Fatalf("replayed %v, want [0 1 3] (garbage skipped, other study filtered)", got)
	}
	var none []int
	if err := NewHistory(js, zerolog.Nop()).Replay(ctx, "empty", func(o front.Outcome) error { none = append(none, o.Trial); return nil }); err != nil || none != nil {
		t.Fatalf("empty study replayed %v, %v", none, err)
	}
}
