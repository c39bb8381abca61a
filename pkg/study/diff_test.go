package study

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	base := func() Spec {
		s := Default()
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name          string
		change        func(*Spec)
		expected      []string // fields
		refused       []string // refused without --allow-spec-change
		refusedAllowA []string // refused with it
	}{
		{name: "same spec", change: func(*Spec) {}},
		{name: "larger budget resumes", change: func(s *Spec) { s.NTrials += 10 }, expected: []string{"n_trials"}},
		{name: "sampler seed resumes", change: func(s *Spec) { s.Sampler.Seed++ }, expected: []string{"sampler"}},
		{
			name: "a parameter gains a value: additive", change: func(s *Spec) {
				s.Space[0].Values = append(s.Space[0].Values[:len(s.Space[0].Values):len(s.Space[0].Values)], nil)
			},
		},
		{
			name: "a parameter loses a value", change: func(s *Spec) { s.Space[0].Values = s.Space[0].Values[:1] },
		},
		{name: "a parameter removed", change: func(s *Spec) { s.Space = s.Space[1:] }},
		{
			name: "objectives changed", change: func(s *Spec) { s.Objectives = s.Objectives[:1] },
			expected: []string{"objectives"}, refused: []string{"objectives"}, refusedAllowA: []string{"objectives"},
		},
		{
			name: "workload changed", change: func(s *Spec) { s.Workload.MaxConcurrency++ },
			expected: []string{"workload"}, refused: []string{"workload"}, refusedAllowA: []string{"workload"},
		},
		{
			name: "rules changed", change: func(s *Spec) { s.Rules.Disabled = append(s.Rules.Disabled, "seed.some_rule") },
			expected: []string{"rules"}, refused: []string{"rules"}, refusedAllowA: []string{"rules"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stored, next := base(), base()
			tt.change(&next)
			first := "space." + stored.Space[0].Name
			switch tt.name {
			case "a parameter gains a value: additive":
				tt.expected, tt.refused = []string{first}, []string{first}
			case "a parameter loses a value":
				tt.expected, tt.refused, tt.refusedAllowA = []string{first}, []string{first}, []string{first}
			case "a parameter removed":
				// Every later parameter shifts too, but only the missing one differs.
				tt.expected, tt.refused, tt.refusedAllowA = []string{first}, []string{first}, []string{first}
			}
			changes := Diff(stored, next)
			if got := fields(changes); strings.Join(got, ",") != strings.Join(tt.expected, ",") {
				t.Fatalf("Diff fields %v, want %v\n%s", got, tt.expected, DescribeChanges(changes))
			}
			if got := fields(Refused(changes, false)); strings.Join(got, ",") != strings.Join(tt.refused, ",") {
				t.Fatalf("refused %v, want %v", got, tt.refused)
			}
			if got := fields(Refused(changes, true)); strings.Join(got, ",") != strings.Join(tt.refusedAllowA, ",") {
				t.Fatalf("refused with --allow-spec-change %v, want %v", got, tt.refusedAllowA)
			}
		})
	}
}

func fields(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Field)
	}
	return out
}
