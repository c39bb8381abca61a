package study

import (
	"fmt"
	"math"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Spec is a study: what to search, how to judge it and how to measure it.
// Every field has a default (Default); a spec file overrides what it names.
type Spec struct {
	// StudyName names the study (letters, digits, '_', '-'); default "sglang_throughput_optimization".
	StudyName string `yaml:"study_name" json:"study_name"`
	// NTrials is the budget of benchmarked trials (rejections do not count); default 100.
	NTrials int `yaml:"n_trials" json:"n_trials"`
	// DeviceNum is the GPU count the seed's gpu rule allows per trial; default 8.
	DeviceNum int `yaml:"device_num" json:"device_num"`
	// TimeBudget stops the study after this long (0: no limit).
	TimeBudget events.Duration `yaml:"time_budget" json:"time_budget"`
	// GPUHours stops the study once its trials have held this much GPU time
	// (each trial's GPUs times its launch-to-stop wall time, pruned and
	// failed trials included; 0: no limit).
	GPUHours float64 `yaml:"gpu_hours" json:"gpu_hours,omitempty"`
	// Model is the served model, its static flags and the server command.
	Model Model `yaml:"model" json:"model"`
	// Space is the search space: each parameter with its candidate values, in order.
	// When a spec file gives a space, it replaces the default space entirely.
	Space Space `yaml:"space" json:"space"`
	// Rules chooses the validation rule sets.
	Rules Rules `yaml:"rules" json:"rules"`
	// Objectives are the metrics to optimise; default ttft (minimise) and tps (maximise).
	Objectives []Objective `yaml:"objectives" json:"objectives"`
	// Constraints are SLOs: a trial that misses one is infeasible.
	Constraints []Constraint `yaml:"constraints" json:"constraints"`
	// Workload is the benchmark each trial runs.
	Workload events.Workload `yaml:"workload" json:"workload"`
	// Workloads, when given, is a mix each trial runs against its one server
	// launch, one workload after the other; each entry starts from Workload
	// and overrides what it names (weight defaults to 1). Objectives are
	// aggregated across the mix (Objective.Aggregate, MixAggregates).
	Workloads []events.NamedWorkload `yaml:"workloads" json:"workloads,omitempty"`
	// Sampler chooses and seeds the search algorithm.
	Sampler SamplerSpec `yaml:"sampler" json:"sampler"`
	// Metrics names the extra metrics a custom benchmark (--backend exec)
	// reports, so objectives and constraints may use them (KnownMetrics
	// lists the others).
	Metrics []string `yaml:"metrics" json:"metrics,omitempty"`
}

// Model describes the served model and how its server starts.
type Model struct {
	// Path is --model-path.
	Path string `yaml:"path" json:"path"`
	// Preset names a known model shape (heads, KV heads, size, MoE, MLA) for the
	// validator (ModelPresetNames); empty: recognised from Path where possible.
	Preset string `yaml:"preset" json:"preset,omitempty"`
	// Shape describes the model's shape when no preset fits; it takes precedence
	// over Preset, which then only names it (see Model.ResolveShape).
	Shape *ModelShape `yaml:"shape" json:"shape,omitempty"`
	// StaticArgs are flags every trial gets (e.g. mem_fraction_static: 0.85), by ServerArgs name.
	StaticArgs map[string]any `yaml:"static_args" json:"static_args,omitempty"`
	// ServerCommand starts the server; default ["python3", "-m", "sglang.launch_server"].
	ServerCommand []string `yaml:"server_command" json:"server_command"`
	// StartupTimeout bounds launch-to-healthy; default 10m.
	StartupTimeout events.Duration `yaml:"startup_timeout" json:"startup_timeout"`
	// CompileStartupTimeout replaces StartupTimeout when torch.compile is on; default 20m.
	CompileStartupTimeout events.Duration `yaml:"compile_startup_timeout" json:"compile_startup_timeout"`
	// BenchmarkTimeout bounds warm-up plus measurement; default 10m.
	BenchmarkTimeout events.Duration `yaml:"benchmark_timeout" json:"benchmark_timeout"`
	// ShutdownTimeout bounds SIGTERM to exit before SIGKILL; default 30s.
	ShutdownTimeout events.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
}

// Rules chooses validation rule sets.
type Rules struct {
	// Sets are the rule sets that apply: "seed", "sglang", "hardware"; default
	// all three (DefaultRuleSets), so no launch is wasted on a config SGLang
	// refuses or the fleet's GPUs cannot run. [seed] alone is the seed tuner's
	// own behaviour.
	Sets []string `yaml:"sets" json:"sets"`
	// Disabled lists rule ids switched off, e.g. "seed.pp_dp_cap".
	Disabled []string `yaml:"disabled" json:"disabled,omitempty"`
	// SGLangVersion is the SGLang version the sglang rules model; default "v0.5.5".
	SGLangVersion string `yaml:"sglang_version" json:"sglang_version"`
}

// Direction of an objective.
type Direction string

// Directions.
const (
	Minimize Direction = "minimize"
	Maximize Direction = "maximize"
)

// Objective is a named metric with a direction. Value = metric × Scale.
type Objective struct {
	// Name is how results and the front call it ("ttft", "tps").
	Name string `yaml:"name" json:"name"`
	// Metric is the result metric it reads ("mean_ttft_ms", "output_throughput", ...).
	Metric string `yaml:"metric" json:"metric"`
	// Scale multiplies the metric (0.001 turns ms into s); default 1.
	Scale float64 `yaml:"scale" json:"scale"`
	// Direction is "minimize" or "maximize".
	Direction Direction `yaml:"direction" json:"direction"`
	// Unit of the scaled value ("s", "tok/s").
	Unit string `yaml:"unit" json:"unit"`
	// Aggregate is how the metric is combined across the workloads of a mix:
	// "weighted" (the weighted mean; the default) or "worst" (the worst
	// workload's value). Without workloads it changes nothing.
	Aggregate string `yaml:"aggregate" json:"aggregate,omitempty"`
}

// Constraint is an SLO on a metric: Max and/or Min (nil: no bound).
type Constraint struct {
	Metric string   `yaml:"metric" json:"metric"`
	Max    *float64 `yaml:"max" json:"max,omitempty"`
	Min    *float64 `yaml:"min" json:"min,omitempty"`
}

// SamplerSpec chooses the search algorithm.
type SamplerSpec struct {
	// Algorithm is "gp-ehvi" (default: a Gaussian process per objective and
	// expected hypervolume improvement), "motpe", "scalarized-tpe", "tpe" and
	// "cmaes" (goptuna's, single-objective studies), "nsga2" or "random"
	// (Algorithms, ResolveAlgorithm).
	Algorithm string `yaml:"algorithm" json:"algorithm"`
	// Acquisition is deprecated: "motpe" with "ehvi" is the old spelling of
	// "gp-ehvi", with "tpe" of "motpe" (ResolveAlgorithm).
	Acquisition string `yaml:"acquisition" json:"acquisition,omitempty"`
	// Seed seeds the sampler; default 42.
	Seed int64 `yaml:"seed" json:"seed"`
	// Baseline runs SGLang's defaults (no tuned flags) as trial 0; default true.
	Baseline *bool `yaml:"baseline" json:"baseline,omitempty"`
	// PopulationSize is NSGA-II's population; default 20.
	PopulationSize int `yaml:"population_size" json:"population_size"`
	// StartupTrials are random trials before a model-based sampler starts modelling; default 10.
	StartupTrials int `yaml:"startup_trials" json:"startup_trials"`
	// Plateau stops the study when the hypervolume has not grown by more than
	// PlateauMinImprovement (a fraction) over PlateauWindow benchmarked trials (0: off).
	PlateauWindow         int     `yaml:"plateau_window" json:"plateau_window,omitempty"`
	PlateauMinImprovement float64 `yaml:"plateau_min_improvement" json:"plateau_min_improvement,omitempty"`
	// Repeats reruns each front member this many times (0: never).
	Repeats int `yaml:"repeats" json:"repeats,omitempty"`
	// EarlyStop lets the sampler stop a running trial whose measurements so
	// far show it cannot reach the front (its optimistic bound is dominated,
	// or it already misses an SLO beyond noise): the trial is PRUNED, keeps
	// what it measured and teaches the models. Default false.
	EarlyStop bool `yaml:"early_stop" json:"early_stop,omitempty"`
	// WarmStart names finished studies (on the same NATS) whose record seeds
	// this one: their failure causes and best configurations, as a prior this
	// study's own results override. They must search the same space; they
	// are only read.
	WarmStart []string `yaml:"warm_start" json:"warm_start,omitempty"`
	// MaxInFlight caps the trials proposed without an outcome (0: as many as the
	// live runners have slots). Fewer in flight means each proposal learns from
	// more results (better fronts per trial), at the cost of idle GPUs.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight,omitempty"`
}

// BaselineEnabled reports whether trial 0 runs SGLang's defaults.
func (s SamplerSpec) BaselineEnabled() bool { return s.Baseline == nil || *s.Baseline }

// Default returns the spec that reproduces the seed tuner: its 18 parameters,
// its 7 rules, TTFT (s, minimise) against output tokens per second (maximise);
// SGLang's own rules and the hardware rules are on as well (DefaultRuleSets),
// so a default study launches nothing SGLang refuses.
func Default() Spec {
	return Spec{
		StudyName: "sglang_throughput_optimization",
		NTrials:   100,
		DeviceNum: 8,
		Model: Model{
			// No preset: the shape is recognised from the path (llama-3.1-8b), so a
			// spec that only changes model.path does not inherit a wrong shape.
			Path:                  "meta-llama/Llama-3.1-8B-Instruct",
			ServerCommand:         []string{"python3", "-m", "sglang.launch_server"},
			StartupTimeout:        events.Duration(10 * time.Minute),
			CompileStartupTimeout: events.Duration(20 * time.Minute),
			BenchmarkTimeout:      events.Duration(10 * time.Minute),
			ShutdownTimeout:       events.Duration(30 * time.Second),
		},
		Space:      SeedSpace(),
		Rules:      Rules{Sets: DefaultRuleSets(), SGLangVersion: "v0.5.5"},
		Objectives: DefaultObjectives(),
		Workload: events.Workload{
			Backend:          "sglang",
			Dataset:          "random-ids",
			NumPrompts:       256,
			RandomInputLen:   1024,
			RandomOutputLen:  256,
			RandomRangeRatio: 1.0,
			MaxConcurrency:   64,
			WarmupRequests:   4,
			Seed:             1,
			IgnoreEOS:        true,
			VocabSize:        32000,
			// bench_serving's defaults of the generated-shared-prefix and mooncake datasets.
			GSPNumGroups: 64, GSPPromptsPerGroup: 16, GSPSystemPromptLen: 2048, GSPQuestionLen: 128, GSPOutputLen: 256,
			MooncakeSlowdownFactor: 1,
		},
		Sampler: SamplerSpec{Algorithm: DefaultAlgorithm, Seed: 42, PopulationSize: 20, StartupTrials: 10},
	}
}

// DefaultRuleSets are the rule sets of a spec that names none: the seed's
// rules, SGLang's own checks and the fleet's hardware.
func DefaultRuleSets() []string { return []string{"seed", "sglang", "hardware"} }

// DefaultObjectives are the seed's: mean TTFT in seconds (minimise) and output
// tokens per second (maximise).
func DefaultObjectives() []Objective {
	return []Objective{
		{Name: "ttft", Metric: "mean_ttft_ms", Scale: 0.001, Direction: Minimize, Unit: "s"},
		{Name: "tps", Metric: "output_throughput", Scale: 1, Direction: Maximize, Unit: "tok/s"},
	}
}

// SeedSpace is the seed tuner's 18 parameters with its values (nil = None).
func SeedSpace() Space {
	return Space{
		{Name: "tp_size", Values: []any{1, 2, 4, 8}},
		{Name: "attention_backend", Values: []any{nil, "flashinfer", "triton", "torch_native", "fa3", "fa4"}},
		{Name: "chunked_prefill_size", Values: []any{nil, 512, 1024, 2048, 4096, 8192, 16384}},
		{Name: "max_prefill_tokens", Values: []any{4096, 8192, 16384, 32768, 65536}},
		{Name: "dp_size", Values: []any{1, 2, 4, 8}},
		{Name: "schedule_policy", Values: []any{"fcfs", "lpm", "random", "dfs-weight", "lof"}},
		{Name: "pp_size", Values: []any{1, 2, 4, 8}},
		{Name: "decode_attention_backend", Values: []any{nil, "flashinfer", "triton", "torch_native", "fa3"}},
		{Name: "prefill_attention_backend", Values: []any{nil, "flashinfer", "triton", "torch_native", "fa3"}},
		{Name: "page_size", Values: []any{nil, 16, 32, 64, 128, 256}},
		{Name: "cuda_graph_max_bs", Values: []any{nil, 8, 16, 24, 32, 48, 64, 80, 96}},
		{Name: "enable_mixed_chunk", Values: []any{false, true}},
		{Name: "disable_overlap_schedule", Values: []any{false, true}},
		{Name: "enable_torch_compile", Values: []any{false, true}},
		{Name: "num_continuous_decode_steps", Values: []any{1, 2, 4, 8, 16}},
		{Name: "enable_two_batch_overlap", Values: []any{false, true}},
		{Name: "tokenizer_worker_num", Values: []any{1, 2, 4, 8, 16}},
		{Name: "sampling_backend", Values: []any{nil, "flashinfer", "pytorch"}},
	}
}

// Validate checks the whole spec and returns the first problem, naming its key.
func (s *Spec) Validate() error {
	if err := events.ValidateStudyName(s.StudyName); err != nil {
		return fmt.Errorf("study_name: %w", err)
	}
	if s.NTrials < 1 {
		return fmt.Errorf("n_trials: must be at least 1, got %d", s.NTrials)
	}
	if !(s.GPUHours >= 0) || math.IsInf(s.GPUHours, 0) {
		return fmt.Errorf("gpu_hours: must be a finite number of GPU-hours >= 0 (0: no limit), got %v", s.GPUHours)
	}
	if s.DeviceNum < 1 {
		return fmt.Errorf("device_num: must be at least 1, got %d", s.DeviceNum)
	}
	if s.Model.Path == "" {
		return fmt.Errorf("model.path: must name the model (--model-path)")
	}
	if err := s.Model.validateModelShape(); err != nil {
		return err
	}
	if len(s.Model.ServerCommand) == 0 {
		return fmt.Errorf("model.server_command: must not be empty")
	}
	for name, v := range s.Model.StaticArgs {
		def, ok := LookupParam(name)
		if !ok {
			return fmt.Errorf("model.static_args.%s: %w", name, unknownParamError(name))
		}
		if def.RunnerOwned || name == "model_path" {
			return fmt.Errorf("model.static_args.%s: set by sgtune itself, not by the spec", name)
		}
		nv, err := NormalizeValue(def, v)
		if err != nil {
			return fmt.Errorf("model.static_args.%s: %w", name, err)
		}
		s.Model.StaticArgs[name] = nv
	}
	for name, d := range map[string]events.Duration{
		"model.startup_timeout": s.Model.StartupTimeout, "model.compile_startup_timeout": s.Model.CompileStartupTimeout,
		"model.benchmark_timeout": s.Model.BenchmarkTimeout, "model.shutdown_timeout": s.Model.ShutdownTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive", name)
		}
	}
	if err := s.Space.Validate(); err != nil {
		return err
	}
	for _, name := range s.Space.Names() {
		if _, static := s.Model.StaticArgs[name]; static {
			return fmt.Errorf("space.%s: also set in model.static_args; a parameter is either searched or fixed", name)
		}
	}
	if err := ValidateSGLangVersion(s.Rules.SGLangVersion); err != nil {
		return fmt.Errorf("rules.sglang_version: %w", err)
	}
	// Hold the fixed flags and the searched values to the pinned SGLang version:
	// argparse would refuse them after every launch.
	for name, v := range s.Model.StaticArgs {
		if p := VersionProblem(s.Rules.SGLangVersion, name, v); p != "" {
			return fmt.Errorf("model.static_args.%s: %s", name, p)
		}
	}
	for _, ps := range s.Space {
		for j, v := range ps.Values {
			if p := VersionProblem(s.Rules.SGLangVersion, ps.Name, v); p != "" {
				return fmt.Errorf("space.%s[%d]: %s (pin rules.sglang_version: main, or drop the value)", ps.Name, j, p)
			}
		}
	}
	for i, set := range s.Rules.Sets {
		switch set {
		case "seed", "sglang", "hardware":
		default:
			return fmt.Errorf("rules.sets[%d]: unknown rule set %q (known: seed, sglang, hardware)", i, set)
		}
	}
	if len(s.Objectives) == 0 {
		return fmt.Errorf("objectives: at least one objective is needed")
	}
	seen := map[string]bool{}
	for i := range s.Objectives {
		o := &s.Objectives[i]
		if o.Name == "" || o.Metric == "" {
			return fmt.Errorf("objectives[%d]: name and metric are required", i)
		}
		if seen[o.Name] {
			return fmt.Errorf("objectives[%d]: duplicate objective %q", i, o.Name)
		}
		seen[o.Name] = true
		if o.Scale == 0 {
			o.Scale = 1
		}
		if o.Direction != Minimize && o.Direction != Maximize {
			return fmt.Errorf("objectives[%d].direction: want minimize or maximize, got %q", i, o.Direction)
		}
	}
	for i, c := range s.Constraints {
		if c.Metric == "" || (c.Max == nil && c.Min == nil) {
			return fmt.Errorf("constraints[%d]: a metric and a max or min are required", i)
		}
	}
	if err := ValidateWorkload("workload", s.Workload); err != nil {
		return err
	}
	if err := s.validateMix(); err != nil {
		return err
	}
	if _, _, err := ResolveAlgorithm(s.Sampler.Algorithm, s.Sampler.Acquisition, len(s.Objectives)); err != nil {
		return fmt.Errorf("sampler.algorithm: %w", err)
	}
	for i, name := range s.Sampler.WarmStart {
		if err := events.ValidateStudyName(name); err != nil {
			return fmt.Errorf("sampler.warm_start[%d]: %w", i, err)
		}
		if name == s.StudyName {
			return fmt.Errorf("sampler.warm_start[%d]: %q is this study itself", i, name)
		}
	}
	if s.Sampler.PopulationSize < 2 {
		return fmt.Errorf("sampler.population_size: must be at least 2, got %d", s.Sampler.PopulationSize)
	}
	if s.Sampler.StartupTrials < 0 || s.Sampler.Repeats < 0 || s.Sampler.PlateauWindow < 0 || s.Sampler.MaxInFlight < 0 {
		return fmt.Errorf("sampler: startup_trials, repeats, plateau_window and max_in_flight must not be negative")
	}
	return nil
}

// StartupTimeout is the health-wait bound for a trial with params (longer with torch.compile).
func (s *Spec) StartupTimeout(p events.Params) time.Duration {
	if AsBool(p, "enable_torch_compile") || AsBool(s.Model.StaticArgs, "enable_torch_compile") {
		return s.Model.CompileStartupTimeout.D()
	}
	return s.Model.StartupTimeout.D()
}

// Timeouts returns the phase bounds of a trial with params.
func (s *Spec) Timeouts(p events.Params) events.Timeouts {
	return events.Timeouts{
		Startup:   events.Duration(s.StartupTimeout(p)),
		Benchmark: s.Model.BenchmarkTimeout,
		Shutdown:  s.Model.ShutdownTimeout,
	}
}
