package events

import "time"

// Workload describes the streaming benchmark a runner drives against each server.
// Field names follow sglang.bench_serving where it has one.
type Workload struct {
	// Backend is "sglang" (POST /generate with random token ids) or "openai" (POST /v1/completions).
	Backend string `json:"backend" yaml:"backend"`
	// Dataset is "random-ids" (random token ids), "prompts" (PromptFile, one
	// prompt a line), "mooncake" (a trace replayed at its arrival times),
	// "generated-shared-prefix" (groups of prompts sharing a system prompt) or
	// "sharegpt" (conversations' first human turns, as text).
	Dataset string `json:"dataset" yaml:"dataset"`
	// PromptFile is the prompt file of the "prompts" dataset, on the runner's host.
	PromptFile string `json:"prompt_file,omitempty" yaml:"prompt_file"`
	// NumPrompts is the number of measured requests.
	NumPrompts int `json:"num_prompts" yaml:"num_prompts"`
	// RandomInputLen and RandomOutputLen are the maximum input and output lengths in tokens.
	RandomInputLen  int `json:"random_input_len" yaml:"random_input_len"`
	RandomOutputLen int `json:"random_output_len" yaml:"random_output_len"`
	// RandomRangeRatio draws lengths uniformly from [max(1, L*ratio), L]; 1 means fixed lengths.
	RandomRangeRatio float64 `json:"random_range_ratio" yaml:"random_range_ratio"`
	// MaxConcurrency caps requests in flight (closed loop); 0 means no cap.
	MaxConcurrency int `json:"max_concurrency" yaml:"max_concurrency"`
	// RequestRate is the Poisson arrival rate in requests per second (open loop); 0 means all at once.
	RequestRate float64 `json:"request_rate" yaml:"request_rate"`
	// WarmupRequests run before measuring and are not counted.
	WarmupRequests int `json:"warmup_requests" yaml:"warmup_requests"`
	// Seed seeds prompt lengths, token ids and arrival times.
	Seed int64 `json:"seed" yaml:"seed"`
	// IgnoreEOS asks the server to generate exactly the requested output length.
	IgnoreEOS bool `json:"ignore_eos" yaml:"ignore_eos"`
	// VocabSize bounds the random token ids.
	VocabSize int `json:"vocab_size" yaml:"vocab_size"`
	// SLO targets for goodput, in milliseconds; zero means no target.
	SLOTTFTMs float64 `json:"slo_ttft_ms,omitempty" yaml:"slo_ttft_ms"`
	SLOTPOTMs float64 `json:"slo_tpot_ms,omitempty" yaml:"slo_tpot_ms"`
	SLOE2EMs  float64 `json:"slo_e2e_ms,omitempty" yaml:"slo_e2e_ms"`

	// DatasetPath is the file of the "mooncake" (JSONL trace) and "sharegpt"
	// (JSON conversations) datasets, on the runner's host.
	DatasetPath string `json:"dataset_path,omitempty" yaml:"dataset_path"`
	// MooncakeSlowdownFactor stretches a trace's arrival times (2 replays it at
	// half speed); 0 means 1.
	MooncakeSlowdownFactor float64 `json:"mooncake_slowdown_factor,omitempty" yaml:"mooncake_slowdown_factor"`
	// The "generated-shared-prefix" dataset: GSPNumGroups groups of
	// GSPPromptsPerGroup prompts; the prompts of a group share one system
	// prompt of GSPSystemPromptLen tokens, followed by a question of
	// GSPQuestionLen tokens; each asks for GSPOutputLen tokens.
	GSPNumGroups       int `json:"gsp_num_groups,omitempty" yaml:"gsp_num_groups"`
	GSPPromptsPerGroup int `json:"gsp_prompts_per_group,omitempty" yaml:"gsp_prompts_per_group"`
	GSPSystemPromptLen int `json:"gsp_system_prompt_len,omitempty" yaml:"gsp_system_prompt_len"`
	GSPQuestionLen     int `json:"gsp_question_len,omitempty" yaml:"gsp_question_len"`
	GSPOutputLen       int `json:"gsp_output_len,omitempty" yaml:"gsp_output_len"`
	// SharegptOutputLen fixes the output length of "sharegpt" requests (0: the
	// length of each conversation's reply).
	SharegptOutputLen int `json:"sharegpt_output_len,omitempty" yaml:"sharegpt_output_len"`

	// Load measures a ladder of load levels on one server launch (nil: the one
	// level MaxConcurrency / RequestRate). Not together with Capacity.
	Load *LoadLadder `json:"load,omitempty" yaml:"load"`
	// Capacity searches the largest load meeting an SLO on one server launch.
	Capacity *CapacitySearch `json:"capacity,omitempty" yaml:"capacity"`
}

// Timeouts bound each phase of a trial.
type Timeouts struct {
	// Startup bounds launch until /health_generate answers 200.
	Startup Duration `json:"startup" yaml:"startup"`
	// Benchmark bounds warm-up plus the measured load.
	Benchmark Duration `json:"benchmark" yaml:"benchmark"`
	// Shutdown bounds SIGTERM until the process group is gone; SIGKILL follows.
	Shutdown Duration `json:"shutdown" yaml:"shutdown"`
}

// TrialQueued is a validated trial waiting in the work queue. It is self-contained:
// a runner needs nothing else to run it.
type TrialQueued struct {
	Envelope
	Params Params `json:"params"`
	// GPUs is how many GPUs the server needs (tp*pp*dp, or tp*pp with DP attention).
	GPUs int `json:"gpus"`
	// ServerArgs are the launch flags after the server command: model path, static
	// flags and the trial's flags, spelled as SGLang spells them. The runner adds
	// --host and --port.
	ServerArgs []string `json:"server_args"`
	// Workload is the benchmark to drive.
	Workload Workload `json:"workload"`
	// Workloads, when set, is a mix run one after the other against the same
	// server (one launch); Workload is then only the mix's base. Each
	// workload's metrics are kept in TrialResult.WorkloadMetrics and the
	// result's Metrics aggregate them as MixAggregates says.
	Workloads []NamedWorkload `json:"workloads,omitempty"`
	// MixAggregates maps a metric to how it is aggregated across Workloads
	// (Aggregate*); a metric not named is AggregateWeighted.
	MixAggregates map[string]string `json:"mix_aggregates,omitempty"`
	// Timeouts bound the trial's phases.
	Timeouts Timeouts `json:"timeouts"`
	// CanonicalHash identifies the config SGLang would really run.
	CanonicalHash string `json:"canonical_hash,omitempty"`
}

// Progress phases of a running trial.
const (
	PhaseClaimed      = "claimed"
	PhaseLaunching    = "launching"
	PhaseHealthy      = "healthy"
	PhaseBenchmarking = "benchmarking"
	PhaseStopping     = "stopping"
	PhaseHeartbeat    = "heartbeat"
	// PhaseMeasured reports part of the benchmark measured
	// (TrialProgress.Measurement), for early stopping.
	PhaseMeasured = "measured"
)

// TrialProgress reports a running trial's phase.
type TrialProgress struct {
	Envelope
	Runner  string `json:"runner"`
	Phase   string `json:"phase"`
	GPUs    []int  `json:"gpus,omitempty"`
	Message string `json:"message,omitempty"`
	// Elapsed is the time since the runner claimed the trial.
	Elapsed Duration `json:"elapsed"`
	// Measurement is what the trial has measured so far (PhaseMeasured).
	Measurement *Measurement `json:"measurement,omitempty"`
}

// Trial result states.
const (
	StateComplete = "COMPLETE"
	StateFailed   = "FAILED"
	StateRejected = "REJECTED"
	// StatePruned is a trial stopped early because what it had measured
	// showed it could not reach the front (sampler.early_stop): its Metrics
	// are the estimates measured before the stop, it counts as a launch in
	// the budget, and it is never a front member.
	StatePruned = "PRUNED"
)

// Failure classes of a failed trial: results about the config, not infrastructure errors.
const (
	FailOOM        = "oom"
	FailCrash      = "crash"
	FailTimeout    = "timeout"
	FailUnhealthy  = "unhealthy"
	FailBenchError = "bench-error"
	// FailDeadLetter marks a trial whose message no service could process (poison,
	// or every delivery hit infrastructure trouble): a result is recorded so the
	// study does not wait for it forever; the message is kept in SGTUNE_DLQ.
	FailDeadLetter = "dead-letter"
	// FailStopped marks a trial stopped on request (events.StopRequest) before
	// it finished, e.g. by early stopping.
	FailStopped = "stopped"
	// FailNoRunner marks a queued trial no live runner can fit (it needs more
	// GPUs than any runner has) after the fleet shrank; the reason names the fleet.
	FailNoRunner = "no-runner"
	// FailWrongModel marks a trial whose server loaded another model than the
	// spec names (/get_model_info): its figures would be about that model.
	// The reason names both; it is about the host's server command, not the
	// config.
	FailWrongModel = "wrong-model"
	// FailServerInfo marks a trial whose healthy server did not answer
	// /get_server_info or /get_model_info readably, so what it ran (version,
	// effective values, model) is unknown; the reason says what failed.
	FailServerInfo = "server-info"
)

// TrialResult is a runner's result for one trial: completed with metrics, or
// failed with a class and the tail of the server's log.
type TrialResult struct {
	Envelope
	Params Params `json:"params"`
	// State is StateComplete, StateFailed or StatePruned.
	State string `json:"state"`
	// FailureClass is one of the Fail* constants when State is StateFailed.
	FailureClass string `json:"failure_class,omitempty"`
	// Reason says in words why the trial failed.
	Reason string `json:"reason,omitempty"`
	// LogTail is the end of the server's (or benchmark command's) log.
	LogTail string `json:"log_tail,omitempty"`
	// LogRef names where the full log is kept (a file path on the runner host).
	LogRef string `json:"log_ref,omitempty"`
	// Metrics are bench_serving-compatible aggregates (mean_ttft_ms, output_throughput, ...)
	// plus startup_seconds and any extra numbers the backend reports; units are in Units.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Units gives each metric's unit ("ms", "tok/s", "req/s", "s", "J/tok", ...).
	Units map[string]string `json:"units,omitempty"`
	// LoadPoints are the load levels measured on the server (a workload's load
	// ladder or capacity search), in the order measured; a trial whose server
	// failed mid-ladder keeps the levels measured before.
	LoadPoints []LoadPoint `json:"load_points,omitempty"`
	// WorkloadMetrics holds each workload's own metrics, by name, when the
	// trial ran a mix (TrialQueued.Workloads); Metrics then aggregate them.
	// A trial that failed part-way keeps the workloads measured before.
	WorkloadMetrics map[string]map[string]float64 `json:"workload_metrics,omitempty"`
	// WorkloadLoadPoints holds each workload's load levels, by name, when a
	// workload of a mix measured a ladder or a capacity search.
	WorkloadLoadPoints map[string][]LoadPoint `json:"workload_load_points,omitempty"`
	// InputLens are the measured requests' prompt lengths in tokens as the
	// server counted them (0 where it reported none), in the order sent; for a
	// ladder or capacity search, those of the headline level.
	InputLens []int `json:"input_lens,omitempty"`
	// GPUSeconds is the GPU time the trial held: its GPUs times the wall
	// time from the launch to the server's stop (0 when nothing launched).
	GPUSeconds float64 `json:"gpu_seconds,omitempty"`
	// Runner and Host identify where it ran; GPUs lists the GPU indices it used.
	Runner   string `json:"runner"`
	Host     string `json:"host,omitempty"`
	GPUs     []int  `json:"gpus,omitempty"`
	GPUModel string `json:"gpu_model,omitempty"`
	// GPUUUIDs are the UUIDs of GPUs, in the same order (NVML's, or a
	// simulated inventory's "GPU-sim-..." ones).
	GPUUUIDs []string `json:"gpu_uuids,omitempty"`
	// DriverVersion and CUDAVersion are what NVML reported on the runner's
	// host ("550.54.15", "12.4"); empty for a simulated inventory.
	DriverVersion string `json:"driver_version,omitempty"`
	CUDAVersion   string `json:"cuda_version,omitempty"`
	// Backend is "sglang", "sim" or "exec".
	Backend string `json:"backend"`
	// LaunchCommand is the full argv the server was started with.
	LaunchCommand []string `json:"launch_command,omitempty"`
	// What the server reported it ran, read after it became healthy
	// (/get_server_info and /get_model_info). SGLangVersion is its version.
	SGLangVersion string `json:"sglang_version,omitempty"`
	// ModelPathLoaded is the model_path the server loaded.
	ModelPathLoaded string `json:"model_path_loaded,omitempty"`
	// EffectiveParams are the values the server really runs, by ServerArgs
	// name, for the tuned parameters, the static flags and the values SGLang
	// derives itself when left to it (mem_fraction_static,
	// chunked_prefill_size, cuda_graph_max_bs, attention_backend, ...).
	EffectiveParams Params `json:"effective_params,omitempty"`
	// AdjustedParams names, sorted, the parameters and static flags whose
	// effective value differs from the value asked (SGLang changes some
	// silently); one asked as None (SGLang's choice) is not listed, its
	// value is in EffectiveParams.
	AdjustedParams []string  `json:"adjusted_params,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
}
