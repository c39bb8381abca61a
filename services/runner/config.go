package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
	"github.com/sgtune/sgtune/services/runner/internal/prefetch"
)

// Backends.
const (
	BackendSGLang = "sglang"
	BackendExec   = "exec"
)

// ErrInvalidConfig is wrapped by every error of Validate and LoadConfig.
var ErrInvalidConfig = errors.New("invalid runner config")

// Config configures one runner. Environment variables (LoadConfig) are named
// after each field; defaults are applied by LoadConfig and by Run.
type Config struct {
	// NATS is how to reach NATS: SGTUNE_NATS_URL or NATS_URL (default
	// nats://127.0.0.1:4222) plus the credential variables of natsx.ConnConfigFromEnv.
	NATS natsx.ConnConfig
	// Replicas of the streams and buckets the runner ensures exist
	// (SGTUNE_NATS_REPLICAS, default 1; 3 on a cluster).
	Replicas int

	// RunnerID names this runner in results and the fleet bucket
	// (SGTUNE_RUNNER_ID, default <hostname>-<pid>-<random suffix>). A second
	// live runner with the same id is refused (ErrDuplicateRunner).
	RunnerID string
	// Backend is "sglang" (launch a server per trial and benchmark it) or "exec"
	// (run BenchmarkCmd per trial) (SGTUNE_BACKEND, default sglang).
	Backend string
	// Sim runs sgtune's simulator instead of SGLang: the server command becomes
	// [this executable, "sim"] unless ServerCommand is set (SGTUNE_SIM=1).
	Sim bool
	// ServerCommand starts a server; the trial's server args, --host and --port
	// follow it (SGTUNE_SERVER_COMMAND, space-separated). Empty means the
	// default, resolved by Run once Sim is final (flags may set it after
	// LoadConfig): [this executable, "sim"] with Sim, DefaultServerCommand
	// ("python3 -m sglang.launch_server") otherwise.
	ServerCommand []string
	// BenchmarkCmd is the exec backend's command, an argv run without a shell
	// (SGTUNE_BENCHMARK_CMD, space-separated).
	BenchmarkCmd []string

	// GPUs, when > 0, makes the inventory simulated: a host of that many GPUs
	// of GPUModel; 0 reads the real GPUs through NVML (SGTUNE_GPUS, default 0;
	// with Sim and no NVML, 1). Without NVML and without Sim, 0 is refused:
	// real servers must not be given GPUs the runner invented.
	GPUs int
	// GPUIDs restricts the runner to some of the host's GPUs: NVML indices
	// (as `sgtune gpus` shows them) or UUIDs, comma-separated
	// (SGTUNE_GPU_IDS, default: every GPU visible). An id the host lacks is
	// refused, naming it; so are GPUs another live runner holds.
	GPUIDs string
	// CUDAVisibleDevices and CUDADeviceOrder are the inherited
	// CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER: when set, the runner uses
	// only the GPUs CUDA would show it (integers in CUDA's order, or UUIDs).
	// Its servers always get CUDA_DEVICE_ORDER=PCI_BUS_ID and their own GPUs.
	CUDAVisibleDevices, CUDADeviceOrder string
	// GPUReleaseTimeout is how long a stopped server's GPUs may take to
	// release their memory before they are quarantined
	// (SGTUNE_GPU_RELEASE_TIMEOUT, default 30s).
	GPUReleaseTimeout time.Duration
	// GPUModel is the simulated GPUs' model: H100, H200, A100-80G, A100-40G,
	// L40S, A10 or B200 (SGTUNE_GPU_MODEL, default H100). The simulator is told
	// it through SGTUNE_SIM_GPU.
	GPUModel string
	// SimTimeScale speeds the simulator up (0.01 = 100x faster); passed as
	// SGTUNE_SIM_TIME_SCALE (SGTUNE_SIM_TIME_SCALE, default 0: the simulator's default).
	SimTimeScale float64

	// LogDir keeps one log file per trial (SGTUNE_LOG_DIR, default
	// $TMPDIR/sgtune-runner/<runner id>).
	LogDir string
	// MaxConcurrentTrials caps trials run at once (SGTUNE_MAX_CONCURRENT_TRIALS,
	// default: the number of GPUs).
	MaxConcurrentTrials int
	// AckWait of the trial consumers; InProgress heartbeats go every AckWait/3
	// (SGTUNE_ACK_WAIT, default 30s).
	AckWait time.Duration
	// MaxDeliver of the trial consumers (SGTUNE_MAX_DELIVER, default 5).
	// AckWait and MaxDeliver are fleet-wide: the first runner sets them, later
	// runners keep them and warn when theirs differ (natsio.ReconcileConsumer).
	MaxDeliver int
	// MaxAckPending of each trial consumer: the fleet-wide cap on trials of
	// one GPU class claimed at once; runners only ever raise it
	// (SGTUNE_MAX_ACK_PENDING, default 64).
	MaxAckPending int
	// StreamIdleTimeout fails a benchmark request whose stream sends nothing
	// for this long (SGTUNE_STREAM_IDLE_TIMEOUT, default 2m).
	StreamIdleTimeout time.Duration
	// HeartbeatEvery is how often the fleet entry is refreshed
	// (SGTUNE_HEARTBEAT_EVERY, default 5s).
	HeartbeatEvery time.Duration
	// NoPrefetch turns off fetching the running studies' model before
	// claiming trials (SGTUNE_PREFETCH=false; default on with real SGLang,
	// always off with the simulator and the exec backend, which need no
	// weights): then the first launch on a fresh host downloads it, inside
	// the config's startup timeout.
	NoPrefetch bool
	// PrefetchPython is the interpreter that fetches a hub model into the
	// local cache (SGTUNE_PREFETCH_PYTHON, space-separated; default: the
	// server command's own python, e.g. "python3" of "python3 -m
	// sglang.launch_server"). Set it when the server command is a wrapper.
	PrefetchPython []string
	// ModelDownloadTimeout bounds one model download
	// (SGTUNE_MODEL_DOWNLOAD_TIMEOUT, default 2h); the runner is not ready
	// (claims nothing) meanwhile.
	ModelDownloadTimeout time.Duration
	// Metrics, when set, receives the runner's Prometheus metrics (see
	// metrics.go: GPUs busy and quarantined, trials running, queue depth per
	// GPU class); nil collects none. Pass the service's own registry.
	Metrics prometheus.Registerer
}

// Defaults.
const (
	DefaultAckWait           = 30 * time.Second
	DefaultMaxDeliver        = 5
	DefaultMaxAckPending     = 64
	DefaultStreamIdleTimeout = 2 * time.Minute
	DefaultHeartbeatEvery    = 5 * time.Second
	DefaultGPUModel          = "H100"
)

// DefaultServerCommand launches SGLang.
var DefaultServerCommand = []string{"python3", "-m", "sglang.launch_server"}

// LoadConfig reads the configuration from getenv (os.Getenv in main) and
// applies defaults. It does not validate; Run does.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		NATS:           natsx.ConnConfigFromEnv(getenv),
		RunnerID:       getenv("SGTUNE_RUNNER_ID"),
		Backend:        getenv("SGTUNE_BACKEND"),
		GPUModel:       getenv("SGTUNE_GPU_MODEL"),
		LogDir:         getenv("SGTUNE_LOG_DIR"),
		GPUIDs:         getenv("SGTUNE_GPU_IDS"),
		ServerCommand:  strings.Fields(getenv("SGTUNE_SERVER_COMMAND")),
		BenchmarkCmd:   strings.Fields(getenv("SGTUNE_BENCHMARK_CMD")),
		PrefetchPython: strings.Fields(getenv("SGTUNE_PREFETCH_PYTHON")),

		CUDAVisibleDevices: getenv("CUDA_VISIBLE_DEVICES"),
		CUDADeviceOrder:    getenv("CUDA_DEVICE_ORDER"),
	}
	var errs []error
	intVar := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	durVar := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a duration", name, v))
				return
			}
			*dst = d
		}
	}
	intVar("SGTUNE_NATS_REPLICAS", &cfg.Replicas)
	intVar("SGTUNE_GPUS", &cfg.GPUs)
	intVar("SGTUNE_MAX_CONCURRENT_TRIALS", &cfg.MaxConcurrentTrials)
	intVar("SGTUNE_MAX_DELIVER", &cfg.MaxDeliver)
	intVar("SGTUNE_MAX_ACK_PENDING", &cfg.MaxAckPending)
	durVar("SGTUNE_ACK_WAIT", &cfg.AckWait)
	durVar("SGTUNE_STREAM_IDLE_TIMEOUT", &cfg.StreamIdleTimeout)
	durVar("SGTUNE_HEARTBEAT_EVERY", &cfg.HeartbeatEvery)
	durVar("SGTUNE_MODEL_DOWNLOAD_TIMEOUT", &cfg.ModelDownloadTimeout)
	if v := getenv("SGTUNE_PREFETCH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SGTUNE_PREFETCH=%q: not a boolean", v))
		}
		cfg.NoPrefetch = !b
	}
	durVar("SGTUNE_GPU_RELEASE_TIMEOUT", &cfg.GPUReleaseTimeout)
	if v := getenv("SGTUNE_SIM"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SGTUNE_SIM=%q: not a boolean", v))
		}
		cfg.Sim = b
	}
	if v := getenv("SGTUNE_SIM_TIME_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("SGTUNE_SIM_TIME_SCALE=%q: not a number", v))
		}
		cfg.SimTimeScale = f
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	cfg.SetDefaults()
	return cfg, nil
}

// SetDefaults fills every zero field that has a default. Run calls it too.
func (c *Config) SetDefaults() {
	if c.RunnerID == "" {
		// Unique per process: host, process id and a random suffix (a
		// container's pid is often 1 on every host of the same name).
		host, _ := os.Hostname()
		c.RunnerID = sanitizeID(host) + "-" + strconv.Itoa(os.Getpid()) + "-" + natsx.RandomSuffix()
	}
	if c.Backend == "" {
		c.Backend = BackendSGLang
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.GPUModel == "" {
		c.GPUModel = DefaultGPUModel
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(os.TempDir(), "sgtune-runner", c.RunnerID)
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.HeartbeatEvery <= 0 {
		c.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if c.ModelDownloadTimeout <= 0 {
		c.ModelDownloadTimeout = prefetch.DefaultTimeout
	}
	if c.GPUReleaseTimeout <= 0 {
		c.GPUReleaseTimeout = gpu.DefaultReleaseTimeout
	}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_=.-]+$`)

func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && idPattern.MatchString(string(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "runner"
	}
	return b.String()
}

// Validate reports every problem of a defaulted config at once.
func (c Config) Validate() error {
	var errs []error
	if !idPattern.MatchString(c.RunnerID) {
		errs = append(errs, fmt.Errorf("runner id %q: use letters, digits, '_', '-', '.' or '='", c.RunnerID))
	}
	switch c.Backend {
	case BackendSGLang:
	case BackendExec:
		if len(c.BenchmarkCmd) == 0 {
			errs = append(errs, errors.New("backend exec needs SGTUNE_BENCHMARK_CMD"))
		}
		if c.Sim {
			errs = append(errs, errors.New("SGTUNE_SIM applies to backend sglang only"))
		}
	default:
		errs = append(errs, fmt.Errorf("backend %q: want sglang or exec", c.Backend))
	}
	if c.GPUs < 0 {
		errs = append(errs, fmt.Errorf("gpus %d: must be >= 0", c.GPUs))
	}
	if _, _, err := gpu.LookupModel(c.GPUModel); err != nil {
		errs = append(errs, err)
	}
	if c.SimTimeScale < 0 {
		errs = append(errs, fmt.Errorf("sim time scale %v: must be >= 0", c.SimTimeScale))
	}
	if c.MaxConcurrentTrials < 0 {
		errs = append(errs, fmt.Errorf("max concurrent trials %d: must be >= 0", c.MaxConcurrentTrials))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack wait %s: must be at least 1s", c.AckWait))
	}
	if c.LogDir == "" {
		errs = append(errs, errors.New("no log directory"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}
