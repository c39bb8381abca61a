package main

import (
	"context"
	"io"

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
	fs := newFlagSet("reporter", stderr)
	fs.StringVar(&cfg.NATS.URL, "nats-url", cfg.NATS.URL, "NATS server URL(s)")
	fs.StringVar(&cfg.Output, "output", cfg.Output, "results file, rewritten on every outcome ({study} is replaced)")
	fs.BoolVar(&cfg.Quiet, "quiet", cfg.Quiet, "do not print the front when stopping")
	logLevel := fs.String("log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level")
	healthAddr := healthFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.NATS.Health, err = startHealth(ctx, *healthAddr); err != nil {
		return err
	}
	return reporter.Run(ctx, cfg, newLogger(stderr, *logLevel))
}

// cmdSampler runs the sampler alone: it owns one study and returns when the
// study is complete.
func cmdSampler(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := sampler.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs := newFlagSet("sampler", stderr)
	fs.StringVar(&cfg.NATS.URL, "nats-url", cfg.NATS.URL, "NATS server URL(s)")
	specFile := fs.String("spec", "", "study spec file (default: SGTUNE_SPEC or the seed's defaults)")
	studyName := fs.String("study-name", "", "study name override")
	fs.IntVar(&cfg.NTrials, "n-trials", cfg.NTrials, "budget of benchmarked trials (0: the spec's)")
	fs.StringVar(&cfg.Algorithm, "sampler", cfg.Algorithm, "algorithm override: motpe, nsga2, random")
	fs.BoolVar(&cfg.Fresh, "no-load", cfg.Fresh, "start the study fresh instead of resuming it")
	deviceNum := fs.Int("device-num", 0, "GPUs a trial may use (seed rule; 0: the spec's)")
	logLevel := fs.String("log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level")
	healthAddr := healthFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.NATS.Health, err = startHealth(ctx, *healthAddr); err != nil {
		return err
	}
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
	return sampler.Run(ctx, cfg, newLogger(stderr, *logLevel))
}

// cmdValidator runs the validator alone.
func cmdValidator(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := validator.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs := newFlagSet("validator", stderr)
	fs.StringVar(&cfg.NATS.URL, "nats-url", cfg.NATS.URL, "NATS server URL(s)")
	fs.IntVar(&cfg.DeviceNum, "device-num", cfg.DeviceNum, "GPU cap of the seed rule (0: the spec's)")
	logLevel := fs.String("log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level")
	healthAddr := healthFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.NATS.Health, err = startHealth(ctx, *healthAddr); err != nil {
		return err
	}
	return validator.Run(ctx, cfg, newLogger(stderr, *logLevel))
}

// cmdRunner runs one runner: one per GPU host.
func cmdRunner(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := runner.LoadConfig(getenv)
	if err != nil {
		return usageError("%v", err)
	}
	fs := newFlagSet("runner", stderr)
	fs.StringVar(&cfg.NATS.URL, "nats-url", cfg.NATS.URL, "NATS server URL(s)")
	fs.StringVar(&cfg.RunnerID, "id", cfg.RunnerID, "runner id (default hostname-pid)")
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "sglang or exec")
	fs.BoolVar(&cfg.Sim, "sim", cfg.Sim, "launch sglang-sim (sgtune sim) instead of SGLang")
	benchCmd := fs.String("benchmark-cmd", "", "exec backend: the command run per trial")
	serverCmd := fs.String("server-command", "", "command that starts the server (default python3 -m sglang.launch_server)")
	fs.IntVar(&cfg.GPUs, "gpus", cfg.GPUs, "simulated inventory: number of GPUs (0: discover with NVML)")
	fs.StringVar(&cfg.GPUModel, "gpu-model", cfg.GPUModel, "simulated inventory: GPU model")
	fs.StringVar(&cfg.LogDir, "log-dir", cfg.LogDir, "directory of per-trial server logs")
	fs.IntVar(&cfg.MaxConcurrentTrials, "max-trials", cfg.MaxConcurrentTrials, "trials run at once (0: as many as GPUs allow)")
	fs.Float64Var(&cfg.SimTimeScale, "sim-time-scale", cfg.SimTimeScale, "with --sim: scale of the simulated startup time")
	logLevel := fs.String("log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level")
	healthAddr := healthFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.NATS.Health, err = startHealth(ctx, *healthAddr); err != nil {
		return err
	}
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
	return runner.Run(ctx, cfg, newLogger(stderr, *logLevel))
}
