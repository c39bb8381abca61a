package natsio

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

func TestDecodeOutcome(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	env := func(typ string) events.Envelope { return events.NewEnvelope(typ, "s", 3, now) }
	one := 1
	tests := []struct {
		name      string
		given     any
		expected  sampling.Outcome
		withError error
	}{
		{
			name:     "completed",
			given:    events.TrialResult{Envelope: env(events.TypeTrialResult), State: events.StateComplete, Metrics: map[string]float64{"m": 2}},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Completed, Metrics: map[string]float64{"m": 2}},
		},
		{
			name:     "failed",
			given:    events.TrialResult{Envelope: env(events.TypeTrialResult), State: events.StateFailed, FailureClass: events.FailOOM},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Failed, FailureClass: events.FailOOM},
		},
		{
			name: "failed with its cause in the log tail",
			given: events.TrialResult{Envelope: env(events.TypeTrialResult), State: events.StateFailed, FailureClass: events.FailCrash,
				LogTail: "Traceback (most recent call last):\n  ...\nValueError: FA4 backend is only supported for prefill.\n"},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Failed, FailureClass: events.FailCrash,
				FailureCause: "ValueError: FA4 backend is only supported for prefill."},
		},
		{
			name: "exec backend failure: the decisive stderr line from the reason",
			given: events.TrialResult{Envelope: env(events.TypeTrialResult), State: events.StateFailed, FailureClass: events.FailCrash,
				Reason:  "benchmark command failed: exit status 1; stderr: loading\nerror: --enable-foo is not supported on sm_90",
				LogTail: "benchmark command failed: exit status 1; stderr: loading\nerror: --enable-foo is not supported on sm_90"},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Failed, FailureClass: events.FailCrash,
				FailureCause: "--enable-foo is not supported on sm_90"},
		},
		{
			name:     "pruned, with its partial metrics",
			given:    events.TrialResult{Envelope: env(events.TypeTrialResult), State: events.StatePruned, Metrics: map[string]float64{"m": 1}},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Pruned, Metrics: map[string]float64{"m": 1}},
		},
		{
			name: "rejected",
			given: events.CandidateRejected{Envelope: env(events.TypeCandidateRejected), Params: events.Params{"tp_size": 8},
				Rejections: []events.Rejection{{Rule: "seed.gpu_count"}, {Rule: "seed.pp_dp_cap"}}},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Rejected, Rules: []string{"seed.gpu_count", "seed.pp_dp_cap"},
				Params: events.Params{"tp_size": float64(8)}},
		},
		{
			name:     "duplicate",
			given:    events.CandidateRejected{Envelope: env(events.TypeCandidateRejected), DuplicateOf: &one},
			expected: sampling.Outcome{Trial: 3, Kind: sampling.Duplicate},
		},
		{
			name:      "unknown result state",
			given:     events.TrialResult{Envelope: env(events.TypeTrialResult), State: "WEIRD"},
			withError: events.ErrMalformed,
		},
		{
			name:      "not an outcome",
			given:     events.CandidateProposed{Envelope: env(events.TypeCandidateProposed)},
			withError: events.ErrUnknownType,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(tc.given)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeOutcome(data)
			if tc.withError != nil {
				if !errors.Is(err, tc.withError) {
					t.Fatalf("error %v, want %v", err, tc.withError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.expected) {
				t.Fatalf("got %+v\nwant %+v", got, tc.expected)
			}
		})
	}
	if _, err := DecodeOutcome([]byte("{not json")); !errors.Is(err, events.ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestDecodeProposalKeepsRepeatOf(t *testing.T) {
	t.Parallel()
	n := 4
	ev := events.CandidateProposed{Envelope: events.NewEnvelope(events.TypeCandidateProposed, "s", 9, time.Unix(0, 0)),
		Params: events.Params{"tp_size": 2}, Sampler: sampling.SamplerRepeat, RepeatOf: &n}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodeProposal(data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Trial != 9 || p.Sampler != sampling.SamplerRepeat || p.RepeatOf == nil || *p.RepeatOf != 4 {
		t.Fatalf("decoded %+v", p)
	}
}
