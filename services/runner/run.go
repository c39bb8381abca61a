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
	guard := gpu.NewGuard(inv, gpu.GuardConfig{ReleaseTimeout: cfg.GPUReleaseTimeout, Logger: log})
	guard.QuarantineBusy()
	driver, cuda := "", ""
	if hi, ok := inv.(gpu.HostInfo); ok {
		driver, cuda = hi.DriverVersion(), hi.CUDAVersion()
	}
	backend, command, env, err := backendSetup(cfg, inv, log)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	gate := modelGate(cfg, backend, command, env, log)
	tcfg := trial.Config{
		Backend: backend, ServerCommand: command, ServerEnv: env, BenchmarkCmd: cfg.BenchmarkCmd,
		LogDir: cfg.LogDir, Runner: cfg.RunnerID, Host: host, GPUModel: gpuModel(inv, cfg),
		Inventory: inv, IdleTimeout: cfg.StreamIdleTimeout, Logger: log,
		Releaser: guard, DriverVersion: driver, CUDAVersion: cuda,
	}
	ncfg := natsio.Config{GPUHealth: guard, DriverVersion: driver, CUDAVersion: cuda}
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
	log.Info().Str("backend", backend).Ints("gpus", gpu.Indices(inv)).Strs("uuids", gpu.UUIDs(inv, gpu.Indices(inv))).
		Str("gpu_model", gpuModel(inv, cfg)).Str("driver", driver).Str("cuda", cuda).Str("log_dir", cfg.LogDir).Msg("runner started")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return adapter.Run(gctx) })
	g.Go(func() error { guard.Run(gctx); return nil })
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

// ErrGPUsInUse is returned (wrapped, naming the other runner and the GPUs)
// when another live runner holds one of this runner's GPUs.
var ErrGPUsInUse = natsio.ErrGPUsInUse

func withName(c natsx.ConnConfig, name string) natsx.ConnConfig {
	if c.Name == "" {
		c.Name = name
	}
	return c
}

func gpuModel(inv gpu.Inventory, cfg Config) string {
	if gs := inv.GPUs(); len(gs) > 0 && !gs[0].Simulated {
		return gs[0].Name
	}
	return cfg.GPUModel
}

// backendSetup resolves the result's backend label, the server command and
// the environment given to servers. Every server (and benchmark command)
// gets CUDA_DEVICE_ORDER=PCI_BUS_ID, so the GPU indices in its
// CUDA_VISIBLE_DEVICES are NVML's, the ones reserved and watched; CUDA's
// default order (fastest first) differs on a host of mixed GPUs.
func backendSetup(cfg Config, inv gpu.Inventory, log zerolog.Logger) (backend string, command, env []string, err error) {
	env = []string{"CUDA_DEVICE_ORDER=PCI_BUS_ID"}
	if cfg.Backend == BackendExec {
		return trial.BackendExec, nil, env, nil
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
		env = append(env, "SGTUNE_SIM_GPU="+simGPU(cfg, inv, log))
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

// simGPU is the simulator's GPU preset: the simulated inventory's model, or
// the model NVML reports (a fake NVML host in tests, or a real host).
func simGPU(cfg Config, inv gpu.Inventory, log zerolog.Logger) string {
	gs := inv.GPUs()
	if len(gs) == 0 || gs[0].Simulated {
		return strings.ToUpper(cfg.GPUModel)
	}
	if k := gpu.SimKey(gs[0].Name); k != "" {
		return k
	}
	log.Warn().Str("gpu", gs[0].Name).Str("simulating", cfg.GPUModel).Msg("the simulator has no preset for this host's GPU")
	return strings.ToUpper(cfg.GPUModel)
}
