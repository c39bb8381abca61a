package benchmark

import (
	"sync"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// Verdict is what became of one configuration: rejected by the validator's
// rules, failed at launch or under load, or completed with metrics.
type Verdict struct {
	// Kind is sampling.Rejected, sampling.Failed or sampling.Completed.
	Kind sampling.Kind
	// Rules names the validation rules a rejected configuration failed.
	Rules []string
	// FailureClass of a failed configuration (oom, crash, ...).
	FailureClass string
	// LogTail of a failed configuration: what the server printed last (the
	// sampler reads the failure's cause from it, as from a runner's result).
	LogTail string
	// Metrics of a completed configuration.
	Metrics map[string]float64
	// Canonical identifies the configuration SGLang would really run; two
	// configurations with the same Canonical are one (the validator rejects
	// the second as a duplicate). Empty: no canonical form known.
	Canonical string
}

// Evaluator judges and measures configurations. It must be deterministic
// (noise-free) and safe for concurrent use.
type Evaluator interface {
	Evaluate(p events.Params) Verdict
}

// EvaluatorFunc adapts a function to Evaluator.
type EvaluatorFunc func(p events.Params) Verdict

// Evaluate calls f.
func (f EvaluatorFunc) Evaluate(p events.Params) Verdict { return f(p) }

// Cache memoises an Evaluator by configuration: the benchmark evaluates the
// same configuration many times across seeds and samplers. Safe for
// concurrent use.
type Cache struct {
	inner Evaluator
	mu    sync.Mutex
	m     map[string]Verdict
	calls int
}

// NewCache wraps e.
func NewCache(e Evaluator) *Cache {
	if e == nil {
		panic("benchmark.NewCache: nil Evaluator")
	}
	return &Cache{inner: e, m: map[string]Verdict{}}
}

// Evaluate returns the cached verdict of p, evaluating it the first time.
func (c *Cache) Evaluate(p events.Params) Verdict {
	k := ParamsKey(p)
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = c.inner.Evaluate(p)
	c.mu.Lock()
	c.m[k] = v
	c.calls++
	c.mu.Unlock()
	return v
}

// Evaluations is the number of distinct configurations evaluated.
func (c *Cache) Evaluations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}
