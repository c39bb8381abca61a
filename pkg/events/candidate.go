package events

// Params maps a search-space parameter name (SGLang's ServerArgs field, e.g.
// "tp_size") to its value: JSON null (leave SGLang's default: pass no flag), a
// bool, a number or a string. After JSON decoding numbers are float64; use
// study.NormalizeParams before comparing values.
type Params map[string]any

// CandidateProposed is the sampler's proposal of trial Trial.
type CandidateProposed struct {
	Envelope
	// Params is the proposed configuration.
	Params Params `json:"params"`
	// Sampler names the algorithm that proposed it ("motpe", "nsga2", "random", "baseline", ...).
	Sampler string `json:"sampler"`
	// Repeat, when > 0, marks a repeat run of the earlier trial RepeatOf.
	RepeatOf *int `json:"repeat_of,omitempty"`
}

// Rejection is one validation rule a candidate failed.
type Rejection struct {
	// Rule is the rule's id, e.g. "seed.gpu_count".
	Rule string `json:"rule"`
	// RuleSet is the rule set it belongs to: "seed", "sglang", "hardware", "safety" or "dedup".
	RuleSet string `json:"rule_set"`
	// Reason is one sentence a person can read.
	Reason string `json:"reason"`
	// Source says where the rule comes from (a file of SGLang, the seed tuner, ...).
	Source string `json:"source,omitempty"`
}

// CandidateRejected is the validator's verdict that trial Trial will not run.
type CandidateRejected struct {
	Envelope
	Params     Params      `json:"params"`
	Rejections []Rejection `json:"rejections"`
	// DuplicateOf is set when the candidate's canonical config already ran as that trial.
	DuplicateOf *int `json:"duplicate_of,omitempty"`
	// CanonicalHash is the hash of the config SGLang would really run.
	CanonicalHash string `json:"canonical_hash,omitempty"`
}
