// Package rules is the validator's pure domain: named, switchable validation
// rules over a candidate's launch parameters, the canonical form of a config
// (what SGLang would really run) and the memory of which trial first ran each
// canonical config. It does no I/O; the adapter feeds it the spec, the fleet
// and the candidate.
package rules

import (
	"slices"
	"sort"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Rule sets. SetSafety is always on; the others are switched by the spec's rules.sets.
const (
	SetSeed     = "seed"
	SetSGLang   = "sglang"
	SetHardware = "hardware"
	SetSafety   = "safety"
	SetDedup    = "dedup"
)

// RuleDedup is the id of the rejection given to a candidate whose canonical
// config already ran as an earlier trial.
const RuleDedup = "dedup.canonical"

// Violation is a failed rule: one sentence, naming the values, that a person understands.
type Violation struct {
	Reason string
}

// Rule is one named check. Check returns nil when the input passes.
type Rule struct {
	// ID is "<set>.<name>", e.g. "seed.gpu_count"; spec.rules.disabled lists these.
	ID string
	// Set is the rule set it belongs to (SetSeed, SetSGLang, SetHardware, SetSafety).
	Set string
	// Source says where the rule comes from (the seed tuner, a file of SGLang, ...).
	Source string
	// Summary says what the rule checks, for docs and `sgtune validate`.
	Summary string
	// Check judges one input.
	Check func(in Input) *Violation
}

// Model is the shape of the served model, as far as the rules need it
// (pkg/study ModelShape, resolved from the spec's preset or shape).
type Model struct {
	// Name is the preset name ("llama-3.1-8b"), or the model path for a
	// user-described shape; empty when the model is unknown.
	Name string
	// Heads and KVHeads are num_attention_heads and num_key_value_heads.
	Heads, KVHeads int
	// ParamsB is the parameter count in billions (all experts for MoE).
	ParamsB float64
	// Layers is num_hidden_layers (0: unknown).
	Layers int
	// MoE marks a mixture-of-experts model; MLA one with multi-head latent attention.
	MoE, MLA bool
	// Attention is a special attention variant ("dsa", "dual_chunk"; "" none).
	Attention string
}

// Known reports whether the shape is known (model-dependent rules are skipped otherwise).
func (m Model) Known() bool { return m.Heads > 0 }

// GPU is one GPU of a fleet host.
type GPU struct {
	Name string
	// MemoryBytes is the GPU's total memory.
	MemoryBytes uint64
	// CCMajor and CCMinor are its CUDA compute capability (9, 0 for an H100); 0, 0 when unknown.
	CCMajor, CCMinor int
}

// CC renders the compute capability as SGLang's docs do: "sm90" for 9.0,
// "sm86" for 8.6, "sm100" for 10.0; "unknown compute capability" when unknown.
func (g GPU) CC() string {
	if g.CCMajor == 0 {
		return "unknown compute capability"
	}
	return "sm" + itoa(g.CCMajor) + itoa(g.CCMinor)
}

// Host is one runner's host and its GPUs.
type Host struct {
	Name string
	GPUs []GPU
}

// Input is everything the rules look at for one candidate.
type Input struct {
	// Params are the candidate's normalised values (study.NormalizeValue); a nil
	// value is None. Values that failed normalisation are left out (Raw keeps them).
	Params events.Params
	// Raw is the candidate as received, before normalisation; the safety rules
	// read it. Nil means "same as Params".
	Raw events.Params
	// Static are the spec's static args (model.static_args), normalised.
	Static map[string]any
	// ModelPath is --model-path.
	ModelPath string
	// Space is the spec's search space, the domain of every value; nil skips the domain check.
	Space study.Space
	// Model is the model's shape (from spec.model.preset).
	Model Model
	// Version is the SGLang version the sglang rules model ("v0.5.5", "main").
	Version string
	// DeviceNum is the GPU count the seed's gpu rule allows per trial.
	DeviceNum int
	// Fleet lists the live runners' hosts; empty when unknown (hardware rules then pass).
	Fleet []Host
	// Baseline marks the baseline candidate (SGLang's defaults), which may leave
	// any parameter at None.
	Baseline bool
}

// NewInput builds the input for one candidate of spec: it normalises raw
// parameter by parameter (a value that does not normalise is left out of
// Params; the safety rules report it from Raw), resolves the model preset and
// takes deviceNum (0: the spec's device_num) and the fleet as given.
func NewInput(spec *study.Spec, raw events.Params, deviceNum int, fleet []Host) Input {
	params := make(events.Params, len(raw))
	for name, v := range raw {
		def, ok := study.LookupParam(name)
		if !ok {
			continue
		}
		nv, err := study.NormalizeValue(def, v)
		if err != nil {
			continue
		}
		params[name] = nv
	}
	if deviceNum <= 0 {
		deviceNum = spec.DeviceNum
	}
	model := modelOf(spec.Model)
	return Input{
		Params:    params,
		Raw:       raw,
		Static:    spec.Model.StaticArgs,
		ModelPath: spec.Model.Path,
		Space:     spec.Space,
		Model:     model,
		Version:   spec.Rules.SGLangVersion,
		DeviceNum: deviceNum,
		Fleet:     fleet,
	}
}

// All returns every rule, in a stable order: safety, seed, sglang, hardware.
func All() []Rule {
	var out []Rule
	out = append(out, safetyRules()...)
	out = append(out, seedRules()...)
	out = append(out, sglangRules()...)
	out = append(out, hardwareRules()...)
	return out
}

// Lookup finds a rule by id.
func Lookup(id string) (Rule, bool) {
	for _, r := range All() {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Enabled returns the rules that apply under spec's rules section: every
// safety rule, and the rules of the listed sets minus the disabled ids. Safety
// rules cannot be disabled.
func Enabled(r study.Rules) []Rule {
	var out []Rule
	for _, rule := range All() {
		if rule.Set != SetSafety && (!slices.Contains(r.Sets, rule.Set) || slices.Contains(r.Disabled, rule.ID)) {
			continue
		}
		out = append(out, rule)
	}
	return out
}

// UsesFleet reports whether any enabled rule needs the live fleet.
func UsesFleet(r study.Rules) bool { return slices.Contains(r.Sets, SetHardware) }

// Evaluate runs every enabled rule of spec on in and returns one rejection per
// failing rule (nil when the candidate passes).
func Evaluate(spec *study.Spec, in Input) []events.Rejection {
	var out []events.Rejection
	for _, rule := range Enabled(spec.Rules) {
		if v := rule.Check(in); v != nil {
			out = append(out, events.Rejection{Rule: rule.ID, RuleSet: rule.Set, Reason: v.Reason, Source: rule.Source})
		}
	}
	return out
}

// IDs lists the ids of rules, sorted.
func IDs(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.ID
	}
	sort.Strings(out)
	return out
}

// violation builds a Violation from sentence parts.
func violation(parts ...string) *Violation {
	return &Violation{Reason: strings.Join(parts, "")}
}
