package study

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
)

// Datasets of events.Workload.Dataset, as sgtune bench and bench_serving name them.
const (
	DatasetRandomIDs    = "random-ids"
	DatasetPrompts      = "prompts"
	DatasetMooncake     = "mooncake"
	DatasetSharedPrefix = "generated-shared-prefix"
	DatasetShareGPT     = "sharegpt"
)

// DatasetNames lists the datasets a workload may name.
var DatasetNames = []string{DatasetRandomIDs, DatasetPrompts, DatasetMooncake, DatasetSharedPrefix, DatasetShareGPT}

// Latency distributions and statistics a capacity SLO may bound: the
// metric is "<stat>_<distribution>_ms" (p99_ttft_ms, mean_tpot_ms, ...).
var (
	latencyDistributions = []string{"ttft", "tpot", "itl", "e2e_latency"}
	latencyStats         = []string{"mean", "median", "p90", "p95", "p99"}
)

// LatencyMetricNames lists every metric a capacity SLO may name.
func LatencyMetricNames() []string {
	var out []string
	for _, d := range latencyDistributions {
		for _, s := range latencyStats {
			out = append(out, s+"_"+d+"_ms")
		}
	}
	return out
}

// IsLatencyMetric reports whether a capacity SLO may name metric.
func IsLatencyMetric(metric string) bool { return slices.Contains(LatencyMetricNames(), metric) }

// DefaultCapacityMaxLevels bounds a capacity search's levels when the spec sets none.
const DefaultCapacityMaxLevels = 8

// ValidateWorkload checks a workload; key is its place in the spec
// ("workload", or "workloads[1]") and prefixes every error.
func ValidateWorkload(key string, w events.Workload) error {
	switch w.Backend {
	case "sglang", "openai":
	default:
		return fmt.Errorf("%s.backend: want sglang or openai, got %q", key, w.Backend)
	}
	switch {
	case w.NumPrompts < 1:
		return fmt.Errorf("%s.num_prompts: must be at least 1, got %d", key, w.NumPrompts)
	case w.RandomRangeRatio < 0 || w.RandomRangeRatio > 1:
		return fmt.Errorf("%s.random_range_ratio: must be within [0, 1], got %v", key, w.RandomRangeRatio)
	case w.MaxConcurrency < 0 || w.RequestRate < 0 || w.WarmupRequests < 0:
		return fmt.Errorf("%s: max_concurrency, request_rate and warmup_requests must not be negative", key)
	case math.IsInf(w.RequestRate, 0) || math.IsNaN(w.RequestRate):
		return fmt.Errorf("%s.request_rate: must be a finite number (0 sends every request at once)", key)
	case w.VocabSize < 2:
		return fmt.Errorf("%s.vocab_size: must be at least 2, got %d", key, w.VocabSize)
	}
	if err := validateDataset(key, w); err != nil {
		return err
	}
	if w.Load != nil && w.Capacity != nil {
		return fmt.Errorf("%s.capacity: cannot be combined with %s.load (a capacity search chooses its own levels)", key, key)
	}
	if w.Load != nil {
		if err := validateLadder(key, w); err != nil {
			return err
		}
	}
	if w.Capacity != nil {
		if err := validateCapacity(key, w); err != nil {
			return err
		}
	}
	return nil
}

func validateDataset(key string, w events.Workload) error {
	lens := func() error {
		if w.RandomInputLen < 1 || w.RandomOutputLen < 1 {
			return fmt.Errorf("%s.random_input_len/random_output_len: must be at least 1", key)
		}
		return nil
	}
	switch w.Dataset {
	case DatasetRandomIDs:
		return lens()
	case DatasetPrompts:
		if w.PromptFile == "" {
			return fmt.Errorf("%s.prompt_file: required with dataset prompts", key)
		}
		return lens()
	case DatasetMooncake:
		switch {
		case w.DatasetPath == "":
			return fmt.Errorf("%s.dataset_path: required with dataset mooncake (a JSONL trace)", key)
		case !(w.MooncakeSlowdownFactor > 0) || math.IsInf(w.MooncakeSlowdownFactor, 0):
			return fmt.Errorf("%s.mooncake_slowdown_factor: must be a positive number, got %v", key, w.MooncakeSlowdownFactor)
		case w.RequestRate > 0:
			return fmt.Errorf("%s.request_rate: a mooncake trace is replayed at its own arrival times; leave request_rate at 0", key)
		}
	case DatasetSharedPrefix:
		return ValidateSharedPrefix(key, w)
	case DatasetShareGPT:
		switch {
		case w.DatasetPath == "":
			return fmt.Errorf("%s.dataset_path: required with dataset sharegpt (a ShareGPT JSON file)", key)
		case w.SharegptOutputLen < 0:
			return fmt.Errorf("%s.sharegpt_output_len: must not be negative, got %d", key, w.SharegptOutputLen)
		}
	default:
		return fmt.Errorf("%s.dataset: unknown dataset %q (known: %s)", key, w.Dataset, strings.Join(DatasetNames, ", "))
	}
	return nil
}

// ValidateSharedPrefix checks the generated-shared-prefix dataset's sizes
// (each at least 1); key prefixes the error.
func ValidateSharedPrefix(key string, w events.Workload) error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"gsp_num_groups", w.GSPNumGroups}, {"gsp_prompts_per_group", w.GSPPromptsPerGroup},
		{"gsp_system_prompt_len", w.GSPSystemPromptLen}, {"gsp_question_len", w.GSPQuestionLen},
		{"gsp_output_len", w.GSPOutputLen},
	} {
		if f.v < 1 {
			return fmt.Errorf("%s.%s: must be at least 1, got %d", key, f.name, f.v)
		}
	}
	return nil
}

func validateLadder(key string, w events.Workload) error {
	l := w.Load
	k := key + ".load"
	switch {
	case len(l.Concurrency) > 0 && len(l.RequestRates) > 0:
		return fmt.Errorf("%s: give concurrency or request_rates, not both", k)
	case len(l.Concurrency) == 0 && len(l.RequestRates) == 0:
		return fmt.Errorf("%s: give the levels, as concurrency: [...] or request_rates: [...]", k)
	}
	var levels []float64
	name := "concurrency"
	for i, c := range l.Concurrency {
		if c < 1 {
			return fmt.Errorf("%s.concurrency[%d]: must be at least 1, got %d", k, i, c)
		}
		levels = append(levels, float64(c))
	}
	if len(l.RequestRates) > 0 {
		name = "request_rates"
		if w.Dataset == DatasetMooncake {
			return fmt.Errorf("%s.request_rates: a mooncake trace is replayed at its own arrival times; use a concurrency ladder", k)
		}
		for i, r := range l.RequestRates {
			if !(r > 0) || math.IsInf(r, 0) {
				return fmt.Errorf("%s.request_rates[%d]: must be a positive number, got %v", k, i, r)
			}
			levels = append(levels, r)
		}
	}
	for i := 1; i < len(levels); i++ {
		if levels[i] <= levels[i-1] {
			return fmt.Errorf("%s.%s[%d]: %v is not above the level before it (%v): a ladder must increase", k, name, i, levels[i], levels[i-1])
		}
	}
	headline, what := l.Headline, ""
	if headline == 0 {
		headline, what = float64(w.MaxConcurrency), key+".max_concurrency"
		if name == "request_rates" {
			headline, what = w.RequestRate, key+".request_rate"
		}
	}
	if !slices.Contains(levels, headline) {
		if what != "" {
			return fmt.Errorf("%s.headline: not set, and %s (%v), its default, is not a level of %s.%s %v: set headline to the level whose metrics the objectives read",
				k, what, headline, k, name, levels)
		}
		return fmt.Errorf("%s.headline: %v is not a level of %s.%s %v", k, headline, k, name, levels)
	}
	return nil
}

func validateCapacity(key string, w events.Workload) error {
	c := w.Capacity
	k := key + ".capacity"
	switch c.Search {
	case events.SearchConcurrency, events.SearchRequestRate:
	default:
		return fmt.Errorf("%s.search: want %s or %s, got %q", k, events.SearchConcurrency, events.SearchRequestRate, c.Search)
	}
	if c.Search == events.SearchRequestRate && w.Dataset == DatasetMooncake {
		return fmt.Errorf("%s.search: a mooncake trace is replayed at its own arrival times; search concurrency", k)
	}
	whole := func(name string, v float64) error {
		if c.Search == events.SearchConcurrency && v != math.Trunc(v) {
			return fmt.Errorf("%s.%s: a concurrency is a whole number, got %v", k, name, v)
		}
		return nil
	}
	switch {
	case !(c.Max >= 1) || math.IsInf(c.Max, 0):
		return fmt.Errorf("%s.max: must be at least 1, got %v", k, c.Max)
	case c.Min < 0 || c.Min > c.Max || math.IsNaN(c.Min):
		return fmt.Errorf("%s.min: must be within (0, max = %v], got %v", k, c.Max, c.Min)
	case c.MaxLevels != 0 && c.MaxLevels < 2:
		return fmt.Errorf("%s.max_levels: must be at least 2, got %d", k, c.MaxLevels)
	case c.RequestsPerLevel < 0:
		return fmt.Errorf("%s.requests_per_level: must not be negative, got %d", k, c.RequestsPerLevel)
	case len(c.SLO) == 0:
		return fmt.Errorf("%s.slo: name at least one latency bound, e.g. p99_ttft_ms: 500", k)
	}
	if err := whole("max", c.Max); err != nil {
		return err
	}
	if err := whole("min", c.Min); err != nil {
		return err
	}
	names := make([]string, 0, len(c.SLO))
	for m := range c.SLO {
		names = append(names, m)
	}
	slices.Sort(names)
	for _, m := range names {
		if !IsLatencyMetric(m) {
			return fmt.Errorf("%s.slo.%s: unknown metric (known: %s)", k, m, strings.Join(LatencyMetricNames(), ", "))
		}
		if v := c.SLO[m]; !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s.slo.%s: must be a positive number of milliseconds, got %v", k, m, v)
		}
	}
	return nil
}
