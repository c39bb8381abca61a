package sampler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
)

// record counts a study's stored messages and reads its state entry.
func record(t *testing.T, js jetstream.JetStream, name string) (candidates, outcomes int, st events.StudyState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	count := func(stream, filter string) int {
		n := 0
		if err := natsx.Replay(ctx, js, stream, filter, func([]byte, natsx.Meta) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return count(events.StreamCandidates, events.CandidatesOfStudy(name)), count(events.StreamOutcomes, events.OutcomesOfStudy(name)), studyState(t, js, name)
}

// TestRunWarmStart runs a study, then a second one warm-started from it:
// the second proposes the first one's best configurations right after its
// baseline, the finished study is not changed, and a warm start from a study
// that does not exist or searches another space is a spec error naming it.
func TestRunWarmStart(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	startFleet(t, js, "warm-src")
	src := config(srv, testSpec("warm-src", 12))
	src.MaxInFlight = 2
	if err := runSampler(t, ctx, src); err != nil {
		t.Fatalf("source study: %v", err)
	}
	c0, o0, st0 := record(t, js, "warm-src")

	var warmSampler []string
	f := startFleet(t, js, "warm-dst")
	dst := config(srv, testSpec("warm-dst", 8))
	dst.MaxInFlight = 1
	dst.Spec.Sampler.WarmStart = []string{"warm-src"}
	if err := runSampler(t, ctx, dst); err != nil {
		t.Fatalf("warm-started study: %v", err)
	}
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("warm-dst"), func(data []byte, _ natsx.Meta) error {
		ev, err := events.Decode[events.CandidateProposed](data, events.TypeCandidateProposed)
		if err == nil {
			warmSampler = append(warmSampler, ev.Sampler)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(warmSampler) < 2 || warmSampler[0] != "baseline" || warmSampler[1] != "warm-start" {
		t.Fatalf("the warm-started study proposed %v; want the baseline, then the source's best", warmSampler)
	}
	_, _, benchmarked, _, _ := f.snapshot()
	if benchmarked != 8 {
		t.Fatalf("the warm-started study benchmarked %d trials, want 8", benchmarked)
	}
	c1, o1, st1 := record(t, js, "warm-src")
	if c1 != c0 || o1 != o0 || st1.UpdatedAt != st0.UpdatedAt || st1.Proposed != st0.Proposed {
		t.Fatalf("the warm start changed its source: %d/%d messages (was %d/%d), state %+v (was %+v)", c1, o1, c0, o0, st1, st0)
	}

	for _, tc := range []struct {
		name, warm string
		space      study.Space
		expected   string
	}{
		{name: "unknown study", warm: "no-such-study", expected: `sampler.warm_start: study "no-such-study" does not exist`},
		{name: "other space", warm: "warm-src", space: study.Space{{Name: "tp_size", Values: []any{1, 2}}},
			expected: `sampler.warm_start: warm start: study "warm-src" has a different parameter space`},
	} {
		cfg := config(srv, testSpec("warm-bad", 4))
		cfg.Fresh = true
		cfg.Spec.Sampler.WarmStart = []string{tc.warm}
		if tc.space != nil {
			cfg.Spec.Space = tc.space
		}
		err := runSampler(t, ctx, cfg)
		if err == nil || !errors.Is(err, study.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.expected) {
			t.Fatalf("%s: Run = %v; want a spec error containing %q", tc.name, err, tc.expected)
		}
	}
}
