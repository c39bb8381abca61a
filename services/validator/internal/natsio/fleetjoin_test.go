package natsio

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
)

// TestValidator_judges_the_fit_against_runners_that_joined_since_the_last_read
// covers the start of a study of separate processes: the validator (its
// sweeper) reads the fleet before the runners register. Seen in the e2e
// test on a loaded host: an 8-GPU trial judged against that empty read was
// queued for two 4-GPU runners and failed no-runner two minutes later, and
// one judged against a read that had only the first runner named only it.
func TestValidator_judges_the_fit_against_runners_that_joined_since_the_last_read(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := connect(t)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	claims, err := EnsureKVClaims(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	studiesKV, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		t.Fatal(err)
	}
	fleetKV, err := natsx.KV(ctx, js, events.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	spec := study.Default()
	spec.StudyName = "join"
	spec.DeviceNum = 8
	spec.Rules.Sets = []string{"seed"} // the fit check alone judges the fleet
	raw, err := spec.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.PutJSON(ctx, studiesKV, spec.StudyName, events.StudyState{Study: spec.StudyName, Spec: raw, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A refresh no test outlasts: whatever the fleet cached stays cached.
	fleet := NewFleet(func(ctx context.Context) ([]events.RunnerStatus, error) { return natsx.LiveRunners(ctx, js) }, time.Hour, time.Now)
	v := NewValidator(js, NewStudies(studiesKV), fleet, claims, Options{Logger: zerolog.New(t.Output())})
	putRunner := func(id string, gpus int) {
		t.Helper()
		st := events.RunnerStatus{Runner: id, Host: "box", Slots: 1}
		for i := range gpus {
			st.GPUs = append(st.GPUs, events.GPU{Index: i, Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80 << 30, ComputeCapability: "9.0"})
		}
		if err := natsx.PutJSON(ctx, fleetKV, id, st); err != nil {
			t.Fatal(err)
		}
	}
	handle := func(trial, tp int) {
		t.Helper()
		p := events.Params{"tp_size": tp, "dp_size": 1, "pp_size": 1}
		ev := events.CandidateProposed{Envelope: events.NewEnvelope(events.TypeCandidateProposed, spec.StudyName, trial, time.Now()), Params: p, Sampler: "random"}
		if err := v.HandleCandidate(ctx, ev, natsx.Meta{Delivered: 1}); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
	rejection := func(trial int) string {
		t.Helper()
		data, ok, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject(spec.StudyName, trial))
		if err != nil || !ok {
			t.Fatalf("trial %d has no outcome (%v); queued: %v", trial, err, queued(t, js, spec.StudyName, trial))
		}
		r, err := events.Decode[events.CandidateRejected](data, events.TypeCandidateRejected)
		if err != nil || len(r.Rejections) != 1 {
			t.Fatalf("trial %d: %s (%v)", trial, data, err)
		}
		return r.Rejections[0].Reason
	}

	// Read while no runner was registered yet; then two 4-GPU runners join.
	if hosts, err := fleet.Hosts(ctx); err != nil || len(hosts) != 0 {
		t.Fatalf("fleet before the runners: %v %v", hosts, err)
	}
	putRunner("r0", 4)
	handle(0, 8)
	if reason := rejection(0); !strings.Contains(reason, "r0@box") {
		t.Fatalf("the 8-GPU trial was judged against the empty read: %s", reason)
	}
	putRunner("r1", 4)
	handle(1, 8)
	if reason := rejection(1); !strings.Contains(reason, "r0@box") || !strings.Contains(reason, "r1@box") {
		t.Fatalf("the rejection names the fleet of an earlier read: %s", reason)
	}
	// An 8-GPU runner joins: the next 8-GPU trial fits and is queued.
	putRunner("r2", 8)
	handle(2, 8)
	if q := queued(t, js, spec.StudyName, 2); !q[8] {
		t.Fatalf("the 8-GPU trial was not queued for the 8-GPU runner: %v", q)
	}
}

// queued reports the GPU classes the trial is queued in.
func queued(t *testing.T, js jetstream.JetStream, name string, trial int) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for gpus := 1; gpus <= 8; gpus++ {
		if _, ok, err := natsx.LastOnSubject(context.Background(), js, events.StreamTrials, events.TrialSubject(name, gpus, trial)); err != nil {
			t.Fatal(err)
		} else if ok {
			out[gpus] = true
		}
	}
	return out
}
