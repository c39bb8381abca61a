package validator

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// ErrBadInput is returned (wrapped, naming the problem) by Check for input no
// rule can judge: an invalid spec, a parameter SGLang's launch_server does not
// have (or that sgtune sets itself), or a value of the wrong type or outside
// SGLang's choices for its flag.
var ErrBadInput = errors.New("bad input")

// CheckOptions are the knobs of Check.
type CheckOptions struct {
	// DeviceNum, when > 0, replaces spec.device_num: the seed's gpu rule allows
	// this many GPUs per trial, and the hardware rules cap every host at it.
	DeviceNum int
	// Fleet are the runners (hosts) the hardware rules consider. When the spec
	// enables the hardware set and Fleet is empty, the hardware rules are not
	// checked and Verdict.Notes says so (the service waits for a runner instead).
	Fleet []events.RunnerStatus
	// Baseline judges the candidate as the baseline (SGLang's defaults), which
	// may leave any parameter at None.
	Baseline bool
}

// Canonical is the config SGLang would actually run (docs/validation.md,
// "Canonical configs"): every server argument whose effective value differs
// from SGLang's default, after SGLang's silent adjustments.
type Canonical struct {
	Model   string         `json:"model"`
	Version string         `json:"sglang_version"`
	Args    map[string]any `json:"args"`
}

// Verdict is what Check says about one configuration.
type Verdict struct {
	// Valid is true when no rule rejects the configuration.
	Valid bool `json:"valid"`
	// Params are the parameters as judged (normalised: integers, None as null).
	Params events.Params `json:"params"`
	// GPUs is how many GPUs one trial of it occupies.
	GPUs int `json:"gpus"`
	// Canonical and CanonicalHash identify what SGLang would run; two configs
	// with the same hash are one config (the service's dedup key).
	Canonical     Canonical `json:"canonical"`
	CanonicalHash string    `json:"canonical_hash"`
	// LaunchArgs are the server flags a runner passes (--model-path first, no
	// --host/--port); only for a valid configuration.
	LaunchArgs []string `json:"launch_args,omitempty"`
	// Rejections lists every failing rule with its set, reason and source.
	Rejections []events.Rejection `json:"rejections,omitempty"`
	// RuleSets are the rule sets applied ("safety" always).
	RuleSets []string `json:"rule_sets"`
	// Model names the model shape the rules used ("" when unknown).
	Model string `json:"model_shape,omitempty"`
	// Hosts are the hosts the hardware rules considered.
	Hosts []string `json:"hosts,omitempty"`
	// Notes say what was not checked and why.
	Notes []string `json:"notes,omitempty"`
}

// Check judges one configuration of spec's study exactly as the validator
// service judges a candidate, without NATS and without dedup (it has no
// study history): the safety rules always, the spec's rule sets (minus
// rules.disabled), the hardware rules against opts.Fleet. It returns a
// Verdict for any well-formed input, valid or not. Errors: ErrBadInput
// (wrapped) for an invalid spec, an unknown or sgtune-owned parameter, or a
// value of the wrong type or outside SGLang's choices. It does not modify
// spec and is safe for concurrent use.
func Check(spec study.Spec, params events.Params, opts CheckOptions) (Verdict, error) {
	// Validate a deep copy: Validate normalises the space and static args in
	// place, and the caller's spec may be shared with other goroutines.
	raw, err := spec.ToJSON()
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: spec: %w", ErrBadInput, err)
	}
	if spec, err = study.FromJSON(raw); err != nil {
		return Verdict{}, fmt.Errorf("%w: spec: %w", ErrBadInput, err)
	}
	if _, err := study.NormalizeParams(params); err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	for name := range params {
		if def, _ := study.LookupParam(name); def.RunnerOwned || name == "model_path" {
			return Verdict{}, fmt.Errorf("%w: parameter %s is set by sgtune itself (the runner or model.path), not by a candidate", ErrBadInput, name)
		}
	}
	if opts.DeviceNum < 0 {
		return Verdict{}, fmt.Errorf("%w: device_num must not be negative, got %d", ErrBadInput, opts.DeviceNum)
	}

	var hosts []rules.Host
	hardware := rules.UsesFleet(spec.Rules)
	if hardware {
		hosts = rules.HostsOf(opts.Fleet)
	}
	in := rules.NewInput(&spec, params, opts.DeviceNum, hosts)
	in.Baseline = opts.Baseline
	c := rules.Canonicalize(in)
	v := Verdict{
		Params:        in.Params,
		GPUs:          study.GPUsNeeded(in.Params, spec.Model.StaticArgs),
		Canonical:     Canonical{Model: c.Model, Version: c.Version, Args: c.Args},
		CanonicalHash: c.Hash(),
		Rejections:    rules.Evaluate(&spec, in),
		RuleSets:      append([]string{rules.SetSafety}, spec.Rules.Sets...),
		Model:         in.Model.Name,
		Hosts:         rules.DescribeHosts(hosts),
	}
	if hardware && len(hosts) == 0 {
		v.Notes = append(v.Notes, "hardware rules not checked: no fleet was given (the validator service waits for a live runner; `sgtune validate --gpu MODEL` simulates one host)")
	}
	if !in.Model.Known() && (slices.Contains(spec.Rules.Sets, rules.SetSGLang) || hardware) {
		v.Notes = append(v.Notes, "model shape unknown (no model.preset or model.shape, and none recognised in model.path): the rules that need heads, KV heads, size, MoE or MLA were skipped")
	}
	if len(v.Rejections) == 0 {
		args, err := spec.LaunchArgs(in.Params)
		if err != nil {
			// The safety rules make this unreachable; reject rather than print a broken launch.
			v.Rejections = append(v.Rejections, events.Rejection{
				Rule: "safety.launch_args", RuleSet: rules.SetSafety, Reason: "the launch command cannot be built: " + err.Error() + ".",
				Source: "pkg/study LaunchArgs",
			})
		} else {
			v.LaunchArgs = args
		}
	}
	v.Valid = len(v.Rejections) == 0
	return v, nil
}
