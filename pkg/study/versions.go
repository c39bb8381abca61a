package study

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The registry is the union of the flags and choices of the SGLang generations
// sgtune models (shared/reference/sglang.md §0, §A.1). The tables below say
// which of them only one generation knows, so a spec and every candidate are
// held to the version the spec pins (rules.sglang_version).

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

var versionPattern = regexp.MustCompile(`^(v?\d+\.\d+(\.\d+)?([.-][0-9A-Za-z.-]+)?|main.*|dev.*)$`)

// ValidateSGLangVersion checks a rules.sglang_version value: a release such as
// "v0.5.5", or "main" (optionally "main-2026..."); "" means the default release.
func ValidateSGLangVersion(v string) error {
	if v == "" || versionPattern.MatchString(v) {
		return nil
	}
	return fmt.Errorf("want a release such as v0.5.5 or main, got %q", v)
}

// IsMainVersion reports whether version names SGLang's main branch rather than a release.
func IsMainVersion(version string) bool {
	v := strings.ToLower(version)
	return strings.HasPrefix(v, "main") || strings.HasPrefix(v, "dev")
}

// VersionLabel names a version in messages ("release" when unset).
func VersionLabel(version string) string {
	if strings.TrimSpace(version) == "" {
		return "release"
	}
	return version
}

// VersionProblem says why SGLang version (main or a release) would refuse
// name = v, or "" when it accepts it. v is a normalised value.
func VersionProblem(version, name string, v any) string {
	main := IsMainVersion(version)
	def, _ := LookupParam(name)
	if !main && mainOnlyFlags[name] {
		return name + " (" + def.Flag + ") is not a flag SGLang " + VersionLabel(version) + " knows; only main has it"
	}
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if !main && slices.Contains(mainOnlyChoices[name], s) {
		return name + " = " + s + " is not one of SGLang " + VersionLabel(version) + "'s choices for " + def.Flag + "; only main has it"
	}
	if main && slices.Contains(releaseOnlyChoices[name], s) {
		return name + " = " + s + " is not one of SGLang main's choices for " + def.Flag + "; only releases have it"
	}
	return ""
}
