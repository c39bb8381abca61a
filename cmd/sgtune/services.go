package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/natsx"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// cmdReporter runs the reporter alone (containers, several hosts).
func cmdReporter(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := reporter.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs, common := newServiceFlags("reporter", stderr, getenv, &cfg.NATS)
	fs.StringVar(&cfg.Output, "output", cfg.Output, "results file, rewritten on every outcome ({study} is replaced)")
	fs.BoolVar(&cfg.Quiet, "quiet", cfg.Quiet, "do not print the front when stopping")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, reg, err := common.start(ctx)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	return reporter.Run(ctx, cfg, logger)
}

// cmdSampler runs the sampler alone: it owns one study and returns when the
// study is complete.
func cmdSampler(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := sampler.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs, common := newServiceFlags("sampler", stderr, getenv, &cfg.NATS)
	specFile := fs.String("spec", "", "study spec file (default: SGTUNE_SPEC or the seed's defaults)")
	studyName := fs.String("study-name", "", "study name override")
	fs.StringVar(studyName, "study", "", aliasPrefix+"--study-name")
	fs.IntVar(&cfg.NTrials, "n-trials", cfg.NTrials, "budget of benchmarked trials (0: the spec's)")
	fs.StringVar(&cfg.Algorithm, "sampler", cfg.Algorithm, "algorithm override: "+strings.Join(study.Algorithms(), ", "))
	fs.BoolVar(&cfg.Fresh, "no-load", cfg.Fresh, "start the study fresh instead of resuming it (deletes its stored trials)")
	fs.BoolVar(&cfg.AllowSpecChange, "allow-spec-change", cfg.AllowSpecChange, "resume a study whose spec changed additively (parameters gaining values)")
	deviceNum := fs.Int("device-num", 0, "GPUs a trial may use (seed rule; 0: the spec's)")
	linger := fs.Bool("linger", envBool(getenv, "SGTUNE_SAMPLER_LINGER"),
		"once the study is complete, stay up (idle) until stopped instead of exiting, so `docker compose up --wait` keeps working (env SGTUNE_SAMPLER_LINGER)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkSetInts(fs, "n-trials", "device-num"); err != nil {
		return err
	}
	logger, reg, err := common.start(ctx)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	if *specFile != "" {
		if cfg.Spec, err = study.LoadFile(*specFile); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if *studyName != "" {
		cfg.Spec.StudyName = *studyName
	}
	if *deviceNum > 0 {
		cfg.Spec.DeviceNum = *deviceNum
	}
	if err := cfg.Spec.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := sampler.Run(ctx, cfg, logger); err != nil {
		if errors.Is(err, sampler.ErrSpecChanged) || errors.Is(err, sampler.ErrStudyOwned) {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	if *linger && ctx.Err() == nil {
		logger.Info().Str("study", cfg.Spec.StudyName).Msg("study complete; lingering until stopped (--linger)")
		<-ctx.Done()
	}
	return nil
}

// envBool reads a boolean environment variable ("true", "1", ...); anything
// else, or nothing, is false.
func envBool(getenv func(string) string, key string) bool {
	b, err := strconv.ParseBool(getenv(key))
	return err == nil && b
}

// cmdValidator runs the validator alone.
func cmdValidator(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := validator.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs, common := newServiceFlags("validator", stderr, getenv, &cfg.NATS)
	fs.IntVar(&cfg.DeviceNum, "device-num", cfg.DeviceNum, "GPU cap of the seed rule (0: the spec's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, reg, err := common.start(ctx)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	return validator.Run(ctx, cfg, logger)
}

// cmdRunner runs one runner: one per GPU host.
func cmdRunner(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := runner.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs, common := newServiceFlags("runner", stderr, getenv, &cfg.NATS)
	fs.StringVar(&cfg.RunnerID, "id", cfg.RunnerID, "runner id (default hostname-pid)")
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "sglang or exec")
	fs.BoolVar(&cfg.Sim, "sim", cfg.Sim, "launch sglang-sim (sgtune sim) instead of SGLang")
	benchCmd := fs.String("benchmark-cmd", "", "exec backend: the command run per trial")
	serverCmd := fs.String("server-command", "", "command that starts the server (default python3 -m sglang.launch_server)")
	fs.IntVar(&cfg.GPUs, "gpus", cfg.GPUs, "simulated inventory: a host of N GPUs (0: read the GPUs with NVML; without NVML only --sim runs, on one simulated GPU)")
	fs.StringVar(&cfg.GPUModel, "gpu-model", cfg.GPUModel, "simulated inventory: GPU model")
	fs.StringVar(&cfg.GPUIDs, "gpu-ids", cfg.GPUIDs, "use only these GPUs: NVML indices (as sgtune gpus shows) or UUIDs, comma-separated (default: all; an inherited CUDA_VISIBLE_DEVICES restricts them too)")
	fs.DurationVar(&cfg.GPUReleaseTimeout, "gpu-release-timeout", cfg.GPUReleaseTimeout, "a stopped server's GPUs that still hold memory after this long are quarantined until they release it")
	fs.StringVar(&cfg.LogDir, "log-dir", cfg.LogDir, "directory of per-trial server logs")
	fs.IntVar(&cfg.MaxConcurrentTrials, "max-trials", cfg.MaxConcurrentTrials, "trials run at once (0: as many as GPUs allow)")
	fs.Float64Var(&cfg.SimTimeScale, "sim-time-scale", cfg.SimTimeScale, "with --sim: scale of the simulated startup time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, reg, err := common.start(ctx)
	if err != nil {
		return err
	}
	cfg.Metrics = reg
	if *benchCmd != "" {
		if cfg.BenchmarkCmd, err = splitArgs(*benchCmd); err != nil {
			return usageError("--benchmark-cmd: %v", err)
		}
	}
	if *serverCmd != "" {
		if cfg.ServerCommand, err = splitArgs(*serverCmd); err != nil {
			return usageError("--server-command: %v", err)
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	if err := runner.Run(ctx, cfg, logger); err != nil {
		// Exit 2: the runner cannot run as configured (its id or GPUs are
		// another live runner's, GPU ids the host lacks, no NVML for real servers).
		if errors.Is(err, runner.ErrDuplicateRunner) || errors.Is(err, runner.ErrGPUsInUse) || errors.Is(err, runner.ErrInvalidConfig) {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	return nil
}

// serviceFlags are the flags every service command shares: where NATS is, the
// log level and the health endpoint.
type serviceFlags struct {
	conn       *natsx.ConnConfig
	stderr     io.Writer
	logLevel   *string
	healthAddr *string
}

// newServiceFlags builds a service command's flag set with the shared flags;
// conn (the service's NATS settings, already read from the environment)
// receives --nats-url and, in start, the health reporter.
func newServiceFlags(name string, stderr io.Writer, getenv func(string) string, conn *natsx.ConnConfig) (*flag.FlagSet, *serviceFlags) {
	fs := newFlagSet(name, stderr)
	fs.StringVar(&conn.URL, "nats-url", conn.URL, "NATS server URL(s)")
	return fs, &serviceFlags{
		conn:       conn,
		stderr:     stderr,
		logLevel:   fs.String("log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level"),
		healthAddr: healthFlag(fs, getenv),
	}
}

// start serves the health endpoint (after flags are parsed) and returns the
// logger and the service's own metrics registry, served at /metrics there.
func (f *serviceFlags) start(ctx context.Context) (zerolog.Logger, prometheus.Registerer, error) {
	h, reg, err := startHealth(ctx, *f.healthAddr)
	if err != nil {
		return zerolog.Logger{}, nil, err
	}
	f.conn.Health = h
	return newLogger(f.stderr, *f.logLevel), reg, nil
}
