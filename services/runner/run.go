package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
	"github.com/sgtune/sgtune/services/runner/internal/natsio"
	"github.com/sgtune/sgtune/services/runner/internal/prefetch"
	"github.com/sgtune/sgtune/services/runner/internal/trial"
)

// Run connects to NATS, ensures the streams, buckets and trial consumers,
// and claims and runs trials until ctx is done. On shutdown it stops
// claiming, stops running servers, hands their trials back, drains the
// connection and returns nil; an error means it could not start or lost its
// consumers.
func Run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := logger.With().Str("service", "runner").Str("runner", cfg.RunnerID).Logger()

	inv, closeInv, err := openInventory(cfg, log)
	if err != nil {
		return err
	}
	defer closeInv()
	backend, command, env, err := backendSetup(cfg)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	gate := modelGate(cfg, backend, command, env, log)
	tcfg := trial.Config{
		Backend: backend, ServerCommand: command, ServerEnv: env, BenchmarkCmd: cfg.BenchmarkCmd,
		LogDir: cfg.LogDir, Runner: cfg.RunnerID, Host: host, GPUModel: gpuModel(inv, cfg),
		Inventory: inv, IdleTimeout: cfg.StreamIdleTimeout, Logger: log,
	}
	ncfg := natsio.Config{}
	if gate != nil {
		tcfg.Models, ncfg.Models = gate, gate
	}
	exec, err := trial.New(tcfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	nc, js, err := natsx.Connect(ctx, withName(cfg.NATS, "sgtune-runner-"+cfg.RunnerID), log)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer nc.Close()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: cfg.Replicas}); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	ncfg.RunnerID, ncfg.Host, ncfg.Backend, ncfg.GPUs = cfg.RunnerID, host, backend, inv.GPUs()
	ncfg.MaxConcurrentTrials, ncfg.AckWait, ncfg.MaxDeliver = cfg.MaxConcurrentTrials, cfg.AckWait, cfg.MaxDeliver
	ncfg.MaxAckPending, ncfg.HeartbeatEvery, ncfg.Logger = cfg.MaxAckPending, cfg.HeartbeatEvery, log
	adapter, err := natsio.New(js, ncfg, exec)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := adapter.EnsureConsumers(ctx); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(newCollector(cfg.RunnerID, adapter.Status, js, classesUpTo(len(inv.GPUs())))); err != nil {
			return fmt.Errorf("runner: register metrics: %w", err)
		}
	}
	if err := adapter.Register(ctx); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	log.Info().Str("backend", backend).Int("gpus", len(inv.GPUs())).Str("log_dir", cfg.LogDir).Msg("runner started")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return adapter.Run(gctx) })
	if gate != nil {
		g.Go(func() error { gate.Run(gctx); return nil })
	}
	err = g.Wait()
	natsx.Drain(nc, 5*time.Second, log)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("runner: %w", err)
	}
	log.Info().Msg("runner stopped")
	return nil
}

// ErrDuplicateRunner is returned (wrapped, naming the other runner) when a
// live runner already uses this runner's id, or took it over while it ran.
var ErrDuplicateRunner = natsio.ErrDuplicateRunner

func withName(c natsx.ConnConfig, name string) natsx.ConnConfig {
	if c.Name == "" {
		c.Name = name
	}
	return c
}

// openInventory picks the simulated inventory when GPUs > 0, NVML otherwise,
// and one simulated GPU for a simulator run on a host without NVML.
func openInventory(cfg Config, log zerolog.Logger) (gpu.Inventory, func(), error) {
	if cfg.GPUs > 0 {
		inv, err := gpu.NewSimulated(cfg.GPUs, cfg.GPUModel)
		return inv, func() {}, err
	}
	inv, closeFn, err := gpu.OpenNVML()
	if err == nil {
		if len(inv.GPUs()) == 0 {
			closeFn()
			return nil, nil, fmt.Errorf("%w: NVML found no GPUs; set SGTUNE_GPUS for a simulated inventory", ErrInvalidConfig)
		}
		return inv, closeFn, nil
	}
	if cfg.Sim && errors.Is(err, gpu.ErrNVMLUnavailable) {
		log.Info().Err(err).Msg("no NVML: simulating one GPU")
		inv, serr := gpu.NewSimulated(1, cfg.GPUModel)
		return inv, func() {}, serr
	}
	return nil, nil, fmt.Errorf("%w: %w (set SGTUNE_GPUS for a simulated inventory)", ErrInvalidConfig, err)
}

func gpuModel(inv gpu.Inventory, cfg Config) string {
	if gs := inv.GPUs(); len(gs) > 0 && !gs[0].Simulated {
		return gs[0].Name
	}
	return cfg.GPUModel
}

// backendSetup resolves the result's backend label, the server command and
// the environment given to servers.
func backendSetup(cfg Config) (backend string, command, env []string, err error) {
	if cfg.Backend == BackendExec {
		return trial.BackendExec, nil, nil, nil
	}
	command = cfg.ServerCommand
	backend = trial.BackendSGLang
	if len(command) == 0 && !cfg.Sim {
		command = append([]string(nil), DefaultServerCommand...)
	}
	if cfg.Sim {
		backend = trial.BackendSim
		if len(command) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return "", nil, nil, fmt.Errorf("runner: find own executable for the simulator: %w", err)
			}
			command = []string{exe, "sim"}
		}
		env = append(env, "SGTUNE_SIM_GPU="+strings.ToUpper(cfg.GPUModel))
		if cfg.SimTimeScale > 0 {
			env = append(env, "SGTUNE_SIM_TIME_SCALE="+strconv.FormatFloat(cfg.SimTimeScale, 'g', -1, 64))
		}
	}
	return backend, command, env, nil
}

// modelGate keeps the running studies' models on this host before trials
// are claimed (real SGLang only: the simulator and the exec backend need no
// weights), fetching hub models through the server command's Python or
// PrefetchPython. nil when off.
func modelGate(cfg Config, backend string, command, env []string, log zerolog.Logger) *prefetch.Gate {
	if cfg.NoPrefetch || backend != trial.BackendSGLang {
		return nil
	}
	python := cfg.PrefetchPython
	if len(python) == 0 {
		python = prefetch.PythonOf(command)
	}
	p := prefetch.New(prefetch.Config{Python: python, Env: env, Timeout: cfg.ModelDownloadTimeout, Logger: log})
	return prefetch.NewGate(p, prefetch.GateConfig{Logger: log})
}
