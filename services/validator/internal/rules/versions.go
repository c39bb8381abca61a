package rules

import (
	"strings"

	"github.com/sgtune/sgtune/pkg/study"
)

// The version tables live in pkg/study (VersionProblem), which also checks a
// spec against them when it loads; the rule below holds every candidate to them.
func versionProblem(version, name string, v any) string {
	return study.VersionProblem(version, name, v)
}

// checkVersionFlags holds the spec's static args and the candidate's values
// to the pinned SGLang version: SGLang's argparse exits on an unknown flag or
// choice, after a launch.
func checkVersionFlags(in Input) *Violation {
	var probs []string
	for _, name := range sortedKeys(in.Static) {
		if p := versionProblem(in.Version, name, in.Static[name]); p != "" {
			probs = append(probs, "static arg "+p)
		}
	}
	for _, name := range sortedKeys(in.Params) {
		if _, static := in.Static[name]; static {
			continue
		}
		if p := versionProblem(in.Version, name, in.Params[name]); p != "" {
			probs = append(probs, p)
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return violation(strings.Join(probs, "; "), ".")
}
