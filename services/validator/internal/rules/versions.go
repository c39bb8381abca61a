package rules

import (
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/study"
)

// pkg/study's registry is the union of the flags and choices of the SGLang
// generations sgtune models (sglang.md §0, §A.1). The tables below say which
// of them only one generation knows, so the validator can hold a spec and a
// candidate to the version the spec pins (rules.sglang_version).

// mainOnlyFlags are launch_server flags a v0.5.x release does not have.
var mainOnlyFlags = map[string]bool{
	"detokenizer_worker_num": true,
}

var mainOnlyBackends = []string{"dsa", "cutedsl_mla", "tokenspeed_mla", "hpc_ops"}

// mainOnlyChoices are argparse choices only main accepts (R-T1, R-T2, R-T3).
var mainOnlyChoices = map[string][]string{
	"attention_backend":         mainOnlyBackends,
	"prefill_attention_backend": mainOnlyBackends,
	"decode_attention_backend":  mainOnlyBackends,
	"schedule_policy":           {"priority", "routing-key"},
	"sampling_backend":          {"ascend"},
	"load_balance_method":       {"auto", "follow_bootstrap_room", "total_requests", "total_tokens"},
}

// releaseOnlyChoices are argparse choices main no longer accepts.
var releaseOnlyChoices = map[string][]string{
	"load_balance_method": {"shortest_queue", "minimum_tokens"},
}

// versionProblem says why SGLang version (main or a release) would refuse
// name = v, or "" when it accepts it. v is a normalised value.
func versionProblem(version, name string, v any) string {
	main := isMain(version)
	def, _ := study.LookupParam(name)
	if !main && mainOnlyFlags[name] {
		return name + " (" + def.Flag + ") is not a flag SGLang " + versionLabel(version) + " knows; only main has it"
	}
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if !main && slices.Contains(mainOnlyChoices[name], s) {
		return name + " = " + s + " is not one of SGLang " + versionLabel(version) + "'s choices for " + def.Flag + "; only main has it"
	}
	if main && slices.Contains(releaseOnlyChoices[name], s) {
		return name + " = " + s + " is not one of SGLang main's choices for " + def.Flag + "; only releases have it"
	}
	return ""
}

func versionLabel(version string) string {
	if strings.TrimSpace(version) == "" {
		return "release"
	}
	return version
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
