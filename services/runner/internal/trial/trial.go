// Package trial runs one trial end to end: launch the server on its GPUs,
// wait for health, warm up and benchmark, stop, and build the
// events.TrialResult. A server that fails (OOM, crash, hang, errors) yields a
// FAILED result with a class and its log's tail: that is a result about the
// config. Only infrastructure problems (the runner shutting down, a server
// command that cannot be started at all) are returned as Go errors, so the
// adapter can hand the trial back to the queue.
package trial

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/execbackend"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
	"github.com/sgtune/sgtune/services/runner/internal/prefetch"
	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// Backends a trial can run on; the label goes into TrialResult.Backend.
const (
	BackendSGLang = "sglang"
	BackendSim    = "sim"
	BackendExec   = "exec"
)

// Default phase timeouts, used when the trial carries none.
const (
	DefaultStartupTimeout   = 10 * time.Minute
	DefaultBenchmarkTimeout = 30 * time.Minute
	DefaultShutdownTimeout  = 30 * time.Second
)

// LogTailBytes is how much of the server's log goes into a result.
const LogTailBytes = 4 << 10

// ErrInfrastructure marks errors that are not about the trial's config: the
// trial should be handed back, not recorded.
var ErrInfrastructure = errors.New("trial: infrastructure error")

// Config holds what every trial of a runner shares.
type Config struct {
	// Backend is BackendSGLang, BackendSim or BackendExec.
	Backend string
	// ServerCommand starts the server (sglang and sim backends), e.g.
	// ["python3", "-m", "sglang.launch_server"].
	ServerCommand []string
	// ServerEnv is added to the server's (or benchmark command's) environment.
	ServerEnv []string
	// BenchmarkCmd is the exec backend's command.
	BenchmarkCmd []string
	// LogDir keeps one log per trial: <LogDir>/<study>/trial-<n>.log.
	LogDir string
	// Runner and Host identify this runner in results.
	Runner, Host string
	// GPUModel names the host's GPUs in results.
	GPUModel string
	// Inventory, when set, is used to check that a stopped server released its
	// GPUs' memory and, if it is a gpu.EnergyMeter, to measure energy.
	Inventory gpu.Inventory
	// Ports hands out server ports; nil uses a private set.
	Ports *sglang.Ports
	// IdleTimeout fails a benchmark request whose stream stalls this long.
	IdleTimeout time.Duration
	// MemoryReleaseTimeout bounds the wait for GPU memory after a stop (default 30 s).
	MemoryReleaseTimeout time.Duration
	// Releaser, when set, does the wait after a stop instead (gpu.Guard): it
	// quarantines the GPUs that do not release, so no trial is given them.
	Releaser GPUReleaser
	// DriverVersion and CUDAVersion are what NVML reports, for results.
	DriverVersion, CUDAVersion string
	// Logger receives warnings; lines carry study and trial.
	Logger zerolog.Logger
	// Models, when set, makes sure a trial's model is on the host before its
	// server is launched (prefetch.Gate), so no download is charged to the
	// config's startup timeout; a model that cannot be had hands the trial
	// back (ErrInfrastructure) and turns the runner not ready. nil: no check
	// (the simulator needs no weights).
	Models ModelEnsurer
}

// ModelEnsurer makes a model present on the host (prefetch.Gate).
type ModelEnsurer interface {
	Ensure(ctx context.Context, m prefetch.Model) error
}

// GPUReleaser waits, after a server stopped, until its GPUs' memory is
// released, quarantining the GPUs that do not release in time.
type GPUReleaser interface {
	AwaitRelease(gpus []int, after string) (quarantined []int)
}

// Executor runs trials. It is safe for concurrent use by several trials.
type Executor struct {
	cfg   Config
	ports *sglang.Ports
}

// New checks cfg and returns an executor.
func New(cfg Config) (*Executor, error) {
	switch cfg.Backend {
	case BackendSGLang, BackendSim:
		if len(cfg.ServerCommand) == 0 {
			return nil, fmt.Errorf("trial: backend %s needs a server command", cfg.Backend)
		}
	case BackendExec:
		if len(cfg.BenchmarkCmd) == 0 {
			return nil, fmt.Errorf("trial: backend exec needs a benchmark command")
		}
	default:
		return nil, fmt.Errorf("trial: unknown backend %q", cfg.Backend)
	}
	if cfg.LogDir == "" {
		return nil, fmt.Errorf("trial: no log directory")
	}
	if cfg.MemoryReleaseTimeout <= 0 {
		cfg.MemoryReleaseTimeout = 30 * time.Second
	}
	ports := cfg.Ports
	if ports == nil {
		ports = &sglang.Ports{}
	}
	return &Executor{cfg: cfg, ports: ports}, nil
}

// ProgressFunc receives phase changes (events.Phase*) with a short message.
// It must not block for long.
type ProgressFunc = func(phase, message string)

// ObserveFunc receives what a running trial has measured so far, as its
// benchmark goes (early stopping). It must not block for long.
type ObserveFunc = func(events.Measurement)

// Run executes trial q on gpus. It returns the result, or an error wrapping
// ErrInfrastructure or ctx's error when the trial must be handed back.
func (e *Executor) Run(ctx context.Context, q events.TrialQueued, gpus []int, progress ProgressFunc) (events.TrialResult, error) {
	return e.RunObserved(ctx, q, gpus, progress, nil)
}

// RunObserved is Run that also reports partial measurements to observe
// (nil: none) while the benchmark runs.
func (e *Executor) RunObserved(ctx context.Context, q events.TrialQueued, gpus []int, progress ProgressFunc, observe ObserveFunc) (events.TrialResult, error) {
	if progress == nil {
		progress = func(string, string) {}
	}
	log := e.cfg.Logger.With().Str("study", q.Study).Int("trial", q.Trial).Logger()
	res := events.TrialResult{
		Params: q.Params, Runner: e.cfg.Runner, Host: e.cfg.Host, GPUs: gpus,
		GPUModel: e.cfg.GPUModel, Backend: e.cfg.Backend, StartedAt: time.Now().UTC(),
		Metrics: map[string]float64{}, Units: map[string]string{},
		DriverVersion: e.cfg.DriverVersion, CUDAVersion: e.cfg.CUDAVersion,
	}
	if e.cfg.Inventory != nil && len(gpus) > 0 {
		res.GPUUUIDs = gpu.UUIDs(e.cfg.Inventory, gpus)
	}
	var err error
	if e.cfg.Backend == BackendExec {
		err = e.runExec(ctx, q, gpus, &res, progress)
	} else {
		err = e.runServer(ctx, q, gpus, &res, progress, observe, log)
	}
	if err != nil {
		return events.TrialResult{}, err
	}
	res.FinishedAt = time.Now().UTC()
	res.Envelope = events.NewEnvelope(events.TypeTrialResult, q.Study, q.Trial, res.FinishedAt).In(q.Incarnation)
	if res.State == "" {
		res.State = events.StateComplete
	}
	putPerGPU(&res, gpus, q.GPUs)
	if len(res.Metrics) == 0 {
		res.Metrics, res.Units = nil, nil
	}
	return res, nil
}

func timeouts(q events.TrialQueued) (startup, bench, shutdown time.Duration) {
	startup, bench, shutdown = q.Timeouts.Startup.D(), q.Timeouts.Benchmark.D(), q.Timeouts.Shutdown.D()
	if startup <= 0 {
		startup = DefaultStartupTimeout
	}
	if bench <= 0 {
		bench = DefaultBenchmarkTimeout
	}
	if shutdown <= 0 {
		shutdown = DefaultShutdownTimeout
	}
	return
}

func fail(res *events.TrialResult, class, reason string) {
	res.State, res.FailureClass, res.Reason = events.StateFailed, class, reason
}

func (e *Executor) logPath(q events.TrialQueued) string {
	return filepath.Join(e.cfg.LogDir, q.Study, "trial-"+strconv.Itoa(q.Trial)+".log")
}

func (e *Executor) runServer(ctx context.Context, q events.TrialQueued, gpus []int, res *events.TrialResult, progress ProgressFunc, observe ObserveFunc, log zerolog.Logger) error {
	startupTO, benchTO, shutdownTO := timeouts(q)
	port, err := e.ports.Pick()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInfrastructure, err)
	}
	defer e.ports.Release(port)
	if e.cfg.Models != nil {
		// Before the launch, so the config's startup clock has not started.
		if err := e.cfg.Models.Ensure(ctx, prefetch.ModelFromArgs(q.ServerArgs)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: the model is not on this host: %v", ErrInfrastructure, err)
		}
	}
	progress(events.PhaseLaunching, fmt.Sprintf("port %d, GPUs %v", port, gpus))
	launchedAt := time.Now()
	srv, err := sglang.Launch(ctx, sglang.LaunchSpec{
		Command: e.cfg.ServerCommand, Args: q.ServerArgs, Port: port, GPUs: gpus,
		// SGTUNE_TRIAL names the trial to whatever the server command is (a
		// wrapper script may log it; the fault tests count launches by it).
		Env: append(slices.Clip(e.cfg.ServerEnv), "SGTUNE_TRIAL="+q.Study+"/"+strconv.Itoa(q.Trial)), LogPath: e.logPath(q),
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: launch server: %v", ErrInfrastructure, err)
	}
	res.LaunchCommand = srv.Argv()
	res.LogRef = srv.LogPath()
	// Whatever happens next, the server is stopped and its GPUs checked.
	defer func() {
		progress(events.PhaseStopping, "")
		if err := srv.Stop(shutdownTO); err != nil {
			log.Error().Err(err).Int("pgid", srv.PGID()).Msg("server process group survived stop")
		}
		res.LogTail = srv.Tail(LogTailBytes)
		// The GPUs are held from the launch until the server is gone.
		res.GPUSeconds = float64(len(gpus)) * time.Since(launchedAt).Seconds()
		e.waitMemoryReleased(gpus, fmt.Sprintf("trial %d of study %s", q.Trial, q.Study), log)
	}()

	startup, err := srv.WaitHealthy(ctx, startupTO)
	if err != nil {
		if f, ok := sglang.AsFailure(err); ok {
			fail(res, f.Class, f.Reason)
			return nil
		}
		return err // ctx cancelled: hand back
	}
	res.Metrics["startup_seconds"], res.Units["startup_seconds"] = startup.Seconds(), "s"
	progress(events.PhaseHealthy, fmt.Sprintf("healthy after %.1fs", startup.Seconds()))
	// What the server really runs: its version, model and effective values.
	// A wrong model or no readable answer fails the trial before any load.
	if ok, err := recordServerInfo(ctx, q, srv.URL(), res); err != nil {
		return err
	} else if !ok {
		if res.FailureClass == events.FailServerInfo {
			// No answer often means the server is dying: classify it so.
			select {
			case <-srv.Exited():
			case <-time.After(time.Second):
			}
			if f := srv.ExitFailure(); f != nil {
				fail(res, f.Class, f.Reason+" right after it became healthy")
			}
		}
		return nil
	}
	if len(res.AdjustedParams) > 0 {
		log.Info().Str("sglang_version", res.SGLangVersion).Strs("adjusted", res.AdjustedParams).
			Interface("effective", res.EffectiveParams).Msg("SGLang runs other values than asked")
	}

	progress(events.PhaseBenchmarking, "")
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-srv.Exited():
			cancel() // a dead server ends the benchmark at once
		case <-bctx.Done():
		}
	}()
	energy := e.energyStart(gpus)
	var mon *gpu.Monitor
	if s, ok := e.cfg.Inventory.(gpu.Sampler); ok {
		mon = gpu.StartMonitor(s, gpus, SampleEvery)
	}
	out, berr := e.benchmark(bctx, q, srv.URL(), benchTO, progress, newMeasurer(q, startup.Seconds(), observe))
	if len(out.PerWorkload) > 0 {
		// A mix keeps every workload it measured, even when a later one failed.
		res.WorkloadMetrics = out.PerWorkload
	}
	// A ladder or capacity search keeps the levels it measured, even when the
	// server crashed or hung at a later one.
	res.LoadPoints, res.InputLens = out.LoadPoints, out.InputLens
	if len(out.PerWorkloadLoadPoints) > 0 {
		res.WorkloadLoadPoints = out.PerWorkloadLoadPoints
	}
	var usage gpu.Summary
	if mon != nil {
		usage = mon.Stop()
	}
	if berr != nil && ctx.Err() == nil {
		// Requests failing together often means the server is dying: give the
		// exit a moment to be seen so it is classified as oom/crash.
		select {
		case <-srv.Exited():
		case <-time.After(time.Second):
		}
	}
	if f := srv.ExitFailure(); f != nil {
		fail(res, f.Class, f.Reason+" during the benchmark")
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case errors.Is(berr, loadgen.ErrTimeout):
		fail(res, events.FailTimeout, berr.Error())
		return nil
	case berr != nil:
		// Includes loadgen.ErrStalled (a stream sent nothing for the idle
		// timeout, and the run was aborted): a server that hung answers
		// /health_generate with 503 or not at all.
		hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
		healthy := srv.Healthy(hctx)
		hcancel()
		if !healthy {
			fail(res, events.FailUnhealthy, "server stopped answering during the benchmark: "+berr.Error())
		} else {
			fail(res, events.FailBenchError, berr.Error())
		}
		return nil
	}
	for k, v := range out.Metrics {
		res.Metrics[k] = v
	}
	for k, v := range out.Units {
		res.Units[k] = v
	}
	res.Reason = out.Note // e.g. no level met the capacity SLO (an infeasible COMPLETE trial)
	e.energyEnd(energy, gpus, res)
	if mon != nil {
		putUsage(res, usage, out.Duration)
	}
	return nil
}

// SampleEvery is how often GPU memory, utilisation and power are sampled
// during a benchmark (NVML's utilisation and power are themselves averages
// over about a second).
const SampleEvery = 500 * time.Millisecond

// putUsage adds the benchmark's GPU usage to a result: peak memory (one GPU
// and all of the trial's), utilisation and power; energy from the counters
// when energyEnd could not.
func putUsage(res *events.TrialResult, u gpu.Summary, d time.Duration) {
	put := func(k string, v float64, unit string) { res.Metrics[k], res.Units[k] = v, unit }
	put("gpu_peak_memory_bytes", float64(u.PeakMemoryBytes), "B")
	put("gpu_peak_memory_total_bytes", float64(u.PeakMemoryTotalBytes), "B")
	if u.HasUtil {
		put("gpu_mean_utilization", u.MeanUtilizationPct, "%")
		put("gpu_max_utilization", u.MaxUtilizationPct, "%")
	}
	if u.HasPower {
		put("gpu_mean_power_watts", u.MeanPowerWatts, "W")
		put("gpu_max_power_watts", u.MaxPowerWatts, "W")
	}
	if _, ok := res.Metrics["energy_joules"]; !ok && u.HasEnergy {
		put("energy_joules", u.EnergyJoules, "J")
		if tok := res.Metrics["total_output_tokens"]; tok > 0 {
			put("energy_per_output_token", u.EnergyJoules/tok, "J/tok")
		}
	}
	if j, ok := res.Metrics["energy_joules"]; ok && d > 0 {
		put("avg_power_watts", j/d.Seconds(), "W")
	}
}

// modelName picks the name to send as "model" to /v1/completions.
func modelName(args []string) string {
	name := ""
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--served-model-name":
			return args[i+1]
		case "--model-path", "--model":
			name = args[i+1]
		}
	}
	if name == "" {
		return "default"
	}
	return name
}

// apiKey is the server's --api-key (a static arg of the spec), which every
// benchmark request must carry.
func apiKey(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--api-key" {
			return args[i+1]
		}
	}
	return ""
}

func (e *Executor) runExec(ctx context.Context, q events.TrialQueued, gpus []int, res *events.TrialResult, progress ProgressFunc) error {
	_, benchTO, _ := timeouts(q)
	res.LaunchCommand = append([]string(nil), e.cfg.BenchmarkCmd...)
	env := append([]string(nil), e.cfg.ServerEnv...)
	if len(gpus) > 0 {
		env = append(env, "CUDA_VISIBLE_DEVICES="+sglang.JoinInts(gpus))
	}
	progress(events.PhaseBenchmarking, "")
	began := time.Now()
	defer func() { res.GPUSeconds = float64(len(gpus)) * time.Since(began).Seconds() }()
	out, err := execbackend.Run(ctx, e.cfg.BenchmarkCmd, env,
		execbackend.Input{Study: q.Study, Trial: q.Trial, Params: q.Params, GPUs: gpus}, benchTO)
	// The benchmark command may have used its GPUs too: the same release
	// check as after a server (a GPU it left busy is quarantined).
	e.waitMemoryReleased(gpus, fmt.Sprintf("the benchmark command of trial %d of study %s", q.Trial, q.Study),
		e.cfg.Logger.With().Str("study", q.Study).Int("trial", q.Trial).Logger())
	var f *execbackend.Failure
	switch {
	case errors.As(err, &f):
		fail(res, f.Class, f.Reason)
		res.LogTail = sglang.TailString([]byte(f.Reason), LogTailBytes)
		return nil
	case errors.Is(err, execbackend.ErrNoCommand):
		return fmt.Errorf("%w: %v", ErrInfrastructure, err)
	case err != nil:
		return err
	}
	res.Metrics, res.Units = out.Metrics, out.Units
	res.LogTail = sglang.TailString([]byte(out.Stderr), LogTailBytes)
	if path := e.logPath(q); os.MkdirAll(filepath.Dir(path), 0o755) == nil &&
		os.WriteFile(path, []byte(out.Stderr), 0o644) == nil {
		res.LogRef = path
	}
	return nil
}

// waitMemoryReleased polls the inventory until the trial's GPUs use less than
// a small residue, so the next trial does not OOM on memory still held.
func (e *Executor) waitMemoryReleased(gpus []int, after string, log zerolog.Logger) {
	if e.cfg.Releaser != nil {
		if q := e.cfg.Releaser.AwaitRelease(gpus, after); len(q) > 0 {
			log.Warn().Ints("quarantined", q).Msg("GPU memory not released after the server stopped: quarantined")
		}
		return
	}
	if e.cfg.Inventory == nil {
		return
	}
	const residue = 1 << 30 // the driver and other tenants hold a little
	deadline := time.Now().Add(e.cfg.MemoryReleaseTimeout)
	for {
		busy := -1
		for _, g := range gpus {
			if used, err := e.cfg.Inventory.MemoryUsed(g); err == nil && used > residue {
				busy = g
				break
			}
		}
		if busy < 0 {
			return
		}
		if time.Now().After(deadline) {
			log.Warn().Int("gpu", busy).Dur("waited", e.cfg.MemoryReleaseTimeout).Msg("GPU memory not released after the server stopped")
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type energyReading struct {
	meter gpu.EnergyMeter
	start map[int]uint64
}

func (e *Executor) energyStart(gpus []int) *energyReading {
	m, ok := e.cfg.Inventory.(gpu.EnergyMeter)
	if !ok {
		return nil
	}
	r := &energyReading{meter: m, start: map[int]uint64{}}
	for _, g := range gpus {
		v, err := m.EnergyMillijoules(g)
		if err != nil {
			return nil // not supported on this GPU: no energy metric
		}
		r.start[g] = v
	}
	return r
}

func (e *Executor) energyEnd(r *energyReading, gpus []int, res *events.TrialResult) {
	if r == nil {
		return
	}
	var mj uint64
	for _, g := range gpus {
		v, err := r.meter.EnergyMillijoules(g)
		if err != nil || v < r.start[g] {
			return
		}
		mj += v - r.start[g]
	}
	joules := float64(mj) / 1000
	res.Metrics["energy_joules"], res.Units["energy_joules"] = joules, "J"
	if tok := res.Metrics["total_output_tokens"]; tok > 0 {
		res.Metrics["energy_per_output_token"], res.Units["energy_per_output_token"] = joules/tok, "J/tok"
	}
}
