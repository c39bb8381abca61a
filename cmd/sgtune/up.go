package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/embedded"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// upOptions are the flags of `sgtune up` (names fixed: users script them).
type upOptions struct {
	nTrials      int
	studyName    string
	specFile     string
	output       string
	deviceNum    int
	sim          bool
	natsURL      string
	dataDir      string
	noLoad       bool
	allowChange  bool
	backend      string
	benchmarkCmd string
	runners      int
	seed         int64
	seedSet      bool
	sampler      string
	maxInFlight  int
	gpuModel     string
	gpus         int
	gpuIDs       string
	gpuRelease   time.Duration
	simScale     float64
	listen       string
	logLevel     string
	verbose      bool
	quiet        bool
	httpAddr     string
	healthAddr   string
	syncAlways   bool
	// storage is the seed's --storage URL: sgtune keeps studies in JetStream,
	// so it is only answered with where the study is and how to export it.
	storage string
	// maxFailStreak stops the study after this many benchmarked trials in a
	// row failed the same way (0: never).
	maxFailStreak int
	// startupTimeout and benchmarkTimeout override the spec's model timeouts
	// (make run: the simulator's short ones; the shipped specs fit real loads).
	startupTimeout   time.Duration
	benchmarkTimeout time.Duration
}

func cmdUp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o upOptions
	fs := newFlagSet("up", stderr)
	fs.IntVar(&o.nTrials, "n-trials", 0, "budget of benchmarked trials (default: the spec's, 100)")
	fs.StringVar(&o.studyName, "study-name", "", "study name (default: the spec's, sglang_throughput_optimization)")
	fs.StringVar(&o.studyName, "study", "", aliasPrefix+"--study-name")
	fs.StringVar(&o.specFile, "spec", "", "study spec file, YAML or JSON (default: the seed's 18 parameters)")
	fs.StringVar(&o.output, "output", reporter.DefaultOutput, "results JSON file")
	fs.IntVar(&o.deviceNum, "device-num", 0, "GPUs one trial may use: the seed's rule tp x pp x dp <= N (default: the spec's, 8)")
	fs.BoolVar(&o.sim, "sim", false, "launch sglang-sim (sgtune sim) instead of SGLang")
	fs.StringVar(&o.natsURL, "nats-url", "", "use this NATS server instead of the embedded one")
	fs.StringVar(&o.dataDir, "data-dir", "./.sgtune", "embedded NATS store and trial logs")
	fs.BoolVar(&o.noLoad, "no-load", false, "start the study fresh instead of resuming it (deletes its stored trials, and says how many)")
	fs.BoolVar(&o.allowChange, "allow-spec-change", false, "resume a study whose spec changed additively (parameters gaining values); other changes are refused")
	fs.StringVar(&o.backend, "backend", runner.BackendSGLang, "trial backend: sglang (launch a server and benchmark it) or exec (run --benchmark-cmd)")
	fs.StringVar(&o.benchmarkCmd, "benchmark-cmd", "", "exec backend: the command run per trial (split on spaces; quotes group)")
	fs.IntVar(&o.runners, "runners", 1, "runners to start in this process; they split the host's GPUs into disjoint sets")
	fs.Func("seed", "sampler seed (default: the spec's, 42)", func(s string) error {
		_, err := fmt.Sscan(s, &o.seed)
		o.seedSet = err == nil
		return err
	})
	fs.StringVar(&o.sampler, "sampler", "", "sampler algorithm: "+strings.Join(study.Algorithms(), ", ")+" (default: the spec's, "+study.DefaultAlgorithm+")")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 0, "cap on trials in flight (default: the spec's, or every runner slot)")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 0, "launch-to-healthy bound of every trial, torch.compile ones too (default: the spec's model.startup_timeout, 10m)")
	fs.DurationVar(&o.benchmarkTimeout, "benchmark-timeout", 0, "warm-up plus measurement bound of every trial (default: the spec's model.benchmark_timeout, 10m)")
	fs.StringVar(&o.gpuModel, "gpu-model", "H100", "GPU model of a simulated inventory (--gpus)")
	fs.IntVar(&o.gpus, "gpus", 0, "simulate a host of N GPUs instead of reading NVML (split between the runners); without NVML, --sim simulates device_num GPUs per runner")
	fs.StringVar(&o.gpuIDs, "gpu-ids", "", "use only these GPUs of the host: NVML indices or UUIDs, comma-separated (an inherited CUDA_VISIBLE_DEVICES restricts them too)")
	fs.DurationVar(&o.gpuRelease, "gpu-release-timeout", 0, "quarantine a stopped server's GPUs that still hold memory after this long (default 30s)")
	fs.Float64Var(&o.simScale, "sim-time-scale", 0.02, "with --sim: scale of the simulated server startup time (1 = realistic)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4222", "embedded NATS address (a free port is used if taken)")
	fs.StringVar(&o.logLevel, "log-level", envOr(getenv, "SGTUNE_LOG_LEVEL", "info"), "log level")
	fs.BoolVar(&o.verbose, "verbose", false, "print service logs on stderr (default: into <data-dir>/sgtune.log)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	fs.BoolVar(&o.syncAlways, "sync", true, "embedded NATS: fsync every write before acknowledging it (false: faster, survives process kills but not a power loss)")
	fs.StringVar(&o.httpAddr, "http", "", "serve the live page (front, hypervolume, GPU timeline, failures) on `ADDR` while the study runs (e.g. 127.0.0.1:8080)")
	healthAddr := healthFlag(fs, getenv)
	fs.StringVar(&o.storage, "storage", "", "the seed's Optuna storage `URL`: not used (sgtune keeps studies in JetStream, --data-dir); see sgtune export --format optuna-journal")
	fs.IntVar(&o.maxFailStreak, "max-consecutive-failures", 5, "stop (exit 1) when this many benchmarked trials in a row fail the same way as SGLang's defaults (trial 0) did: a broken benchmark or server command, or host (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.healthAddr = *healthAddr
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := checkSetInts(fs, "n-trials", "device-num", "max-in-flight", "gpus"); err != nil {
		return err
	}
	if o.maxFailStreak < 0 {
		return usageError("--max-consecutive-failures must be 0 (never stop) or more, got %d", o.maxFailStreak)
	}
	spec, err := loadSpec(o)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.runners < 1 {
		return usageError("--runners must be at least 1")
	}
	var benchCmd []string
	switch o.backend {
	case runner.BackendSGLang:
		if o.benchmarkCmd != "" {
			return usageError("--benchmark-cmd needs --backend exec")
		}
	case runner.BackendExec:
		if benchCmd, err = splitArgs(o.benchmarkCmd); err != nil || len(benchCmd) == 0 {
			return usageError("--backend exec needs --benchmark-cmd (the command run per trial)")
		}
	default:
		return usageError("--backend %q: want sglang or exec", o.backend)
	}
	// The GPUs before anything starts: a real backend without NVML is
	// refused, and the runners get disjoint GPUs.
	runnerGPUs, err := splitHostGPUs(o, spec, getenv, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	// Logs go to a file unless --verbose, so the console shows progress and the front.
	logOut := stderr
	if !o.verbose {
		f, err := os.OpenFile(filepath.Join(o.dataDir, "sgtune.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	logger := newLogger(logOut, o.logLevel)

	conn := natsx.ConnConfigFromEnv(getenv)
	if o.natsURL != "" {
		conn.URL = o.natsURL
	} else {
		srv, err := startEmbedded(o)
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		conn.URL = srv.ClientURL()
		conn.User, conn.Password, conn.Token, conn.CredsFile, conn.NKeyFile = "", "", "", "", ""
	}
	if o.storage != "" {
		fmt.Fprintf(stderr, "sgtune up: --storage %s is not used: sgtune keeps studies in JetStream (here: %s); "+
			"for Optuna and optuna-dashboard, export it: sgtune export --format optuna-journal %s --study %s --output %s.journal\n",
			o.storage, readFlags(o), readFlags(o), spec.StudyName, spec.StudyName)
	}
	say(stderr, o.quiet, "sgtune up: study %q, %d trials, NATS %s, data %s", spec.StudyName, spec.NTrials, conn.URL, o.dataDir)

	// Every service of this process gets its own registry; /metrics (on
	// --health-addr and on the --http page) gathers them all.
	health := natsx.NewHealth()
	conn.Health = health
	metricsOf := newUpMetrics()
	if err := serveHealth(ctx, o.healthAddr, health, metricsOf.gatherers()); err != nil {
		return err
	}

	client := conn
	client.Name = "sgtune-up"
	if o.natsURL != "" {
		// Say within seconds that the server is not there or refuses us; the
		// services then connect with their reconnect-forever settings.
		probe, _, err := natsx.ConnectClient(ctx, client, 0)
		if err != nil {
			return err
		}
		probe.Close()
	}
	nc, js, err := natsx.Connect(ctx, client, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		return err
	}
	// One study, many processes: refuse a resume with another spec, say what
	// --no-load deletes, and join a study another process is running.
	stored, err := sampler.Inspect(ctx, js, spec)
	if err != nil {
		return err
	}
	if err := stored.Check(o.noLoad, o.allowChange); err != nil {
		return &exitError{code: 2, err: err}
	}
	if p, b, r := stored.Trials(); o.noLoad && stored.Exists {
		fmt.Fprintf(stderr, "sgtune up: --no-load: deleting the stored study %q: %d trials (%d benchmarked, %d rejected)\n", spec.StudyName, p, b, r)
	}
	joining := stored.Owner != nil
	liveReporters := 0
	if joining {
		if liveReporters, err = reporter.LiveReporters(ctx, js); err != nil {
			return err
		}
		also := "and a reporter"
		if liveReporters > 0 {
			also = "(its reporter is live)"
		}
		say(stderr, o.quiet, "sgtune up: study %q is running in another process (%s on %s): joining it with %d runner(s) %s; this process ends when the study completes",
			spec.StudyName, stored.Owner.Instance, stored.Owner.Host, o.runners, also)
	}

	if o.httpAddr != "" {
		url, err := servePage(ctx, o.httpAddr, withMetrics(reporter.PageHandler(js, spec.StudyName), metricsOf.gatherers()))
		if err != nil {
			return err
		}
		say(stderr, o.quiet, "sgtune up: the front, plotted: %s", url)
	}
	// What the study had before this run, to report this run's own rate.
	before := 0
	if st, err := readStudy(ctx, js, spec.StudyName); err == nil && !o.noLoad {
		before = st.Benchmarked
	}
	start := time.Now()
	svcCtx, stopServices := context.WithCancel(ctx)
	defer stopServices()
	g, gctx := errgroup.WithContext(svcCtx)

	vcfg := validator.Config{NATS: conn, Metrics: metricsOf.service()}
	vcfg.NATS.Name = ""
	vcfg = vcfg.Defaults()
	g.Go(func() error { return validator.Run(gctx, vcfg, logger) })

	rcfg := reporter.Config{NATS: conn, Output: o.output, Quiet: true, Metrics: metricsOf.service()}
	rcfg.NATS.Name = "sgtune-reporter"
	if liveReporters > 0 {
		// Joining: start a reporter only once none is live (its process ended).
		g.Go(func() error {
			return reporterWhenNoneLive(gctx, js, func() error { return reporter.Run(gctx, rcfg, logger) })
		})
	} else {
		g.Go(func() error { return reporter.Run(gctx, rcfg, logger) })
	}

	// With real SGLang, check it can be imported before launching anything,
	// rather than recording a crash per trial.
	if o.backend == runner.BackendSGLang && !o.sim {
		if err := checkSGLang(ctx, spec.Model.ServerCommand); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	for i := range o.runners {
		cfg := runner.Config{
			NATS:         conn,
			RunnerID:     fmt.Sprintf("%s-%d-r%d", host, os.Getpid(), i), // unique per process
			Backend:      o.backend,
			Sim:          o.sim,
			BenchmarkCmd: benchCmd,
			GPUModel:     o.gpuModel,
			SimTimeScale: o.simScale,
			LogDir:       filepath.Join(o.dataDir, "logs"),
			Metrics:      metricsOf.service(),
		}
		runnerGPUs.apply(&cfg, i)
		cfg.ServerCommand = spec.Model.ServerCommand
		if o.sim {
			cfg.ServerCommand = nil // the runner launches its own executable's "sim"
		}
		cfg.NATS.Name = "sgtune-runner-" + cfg.RunnerID
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			return &exitError{code: 2, err: err}
		}
		g.Go(func() error { return runner.Run(gctx, cfg, logger) })
	}

	// Joining, the sampler stands by: it takes the study over only if its
	// owner's lease expires, and returns when the owner completes it.
	scfg := sampler.Config{NATS: conn, Spec: spec, Fresh: o.noLoad, AllowSpecChange: o.allowChange, Metrics: metricsOf.service()}
	if !joining {
		// Started at the same moment as another process: the sampler finds out.
		scfg.OnStandby = func(owner events.Lease) {
			say(stderr, o.quiet, "sgtune up: study %q is running in another process (%s on %s): joining it with %d runner(s); this process ends when the study completes",
				spec.StudyName, owner.Instance, owner.Host, o.runners)
		}
	}
	scfg.NATS.Name = "sgtune-sampler"
	studyDone := make(chan error, 1)
	g.Go(func() error {
		err := sampler.Run(gctx, scfg, logger)
		studyDone <- err
		return err
	})
	if !o.quiet {
		g.Go(func() error { showProgress(gctx, js, spec.StudyName, stderr, start); return nil })
	}
	failing := make(chan string, 1)
	if o.maxFailStreak > 0 {
		needBaseline := spec.Sampler.BaselineEnabled()
		g.Go(func() error {
			watchFailures(gctx, js, spec.StudyName, o.maxFailStreak, needBaseline, failing)
			return nil
		})
	}

	// The study is complete when the sampler returns; then wait for the reporter to
	// fold the last outcomes before stopping everything.
	var runErr error
	select {
	case err := <-studyDone:
		if err == nil && ctx.Err() == nil {
			runErr = waitReported(ctx, js, spec.StudyName, 30*time.Second)
		} else if err != nil {
			runErr = err
		}
	case reason := <-failing:
		runErr = fmt.Errorf("study %q stopped: %s", spec.StudyName, reason)
	case <-gctx.Done():
	}
	stopServices()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		runErr = err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; finished trials are kept: run the same command again to resume")
	}
	if runErr != nil {
		return runErr
	}
	elapsed := time.Since(start)
	if o.output != "" {
		if err := reporter.WriteResults(ctx, js, spec.StudyName, o.output); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	doc, err := reporter.ReadFront(ctx, js, spec.StudyName)
	if err != nil {
		return fmt.Errorf("read the front: %w", err)
	}
	if err := reporter.PrintFront(stdout, doc); err != nil {
		return err
	}
	st, _ := readStudy(ctx, js, spec.StudyName)
	rate := "nothing left to run"
	if ran := st.Benchmarked - before; ran > 0 {
		rate = fmt.Sprintf("%d benchmarked in this run, %.1f trials/min", ran, float64(ran)/elapsed.Minutes())
	}
	say(stderr, false, "sgtune up: study %q complete in %s: %d benchmarked, %d rejected (%s); results in %s",
		spec.StudyName, elapsed.Round(time.Second), st.Benchmarked, st.Rejected, rate, o.output)
	// The hint names commands that work once this process is gone: the
	// embedded server stops with it, its store stays in --data-dir.
	say(stderr, false, "sgtune up: the front, later: sgtune front %s --study %s (or: sgtune export --format optuna-journal|csv %s --study %s)",
		readFlags(o), spec.StudyName, readFlags(o), spec.StudyName)
	if doc.Counts.Benchmarked > 0 && doc.Counts.Completed == 0 {
		return fmt.Errorf("study %q: all %d benchmarked trials failed (%s): nothing was measured", spec.StudyName, doc.Counts.Benchmarked, classCounts(doc.Counts.FailedByClass))
	}
	return nil
}

// readFlags are the flags that let a client read this run's study after it
// exits: the store it left in --data-dir, or the server of --nats-url.
func readFlags(o upOptions) string {
	if o.natsURL != "" {
		return "--nats-url " + o.natsURL
	}
	return "--data-dir " + shellQuote(o.dataDir)
}

func shellQuote(s string) string { return strings.Join(quoteArgs([]string{s}), " ") }

// classCounts lists failure counts by class, largest first ("oom 3, crash 1").
func classCounts(m map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var list []kv
	for k, n := range m {
		list = append(list, kv{k, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].k < list[j].k
	})
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = fmt.Sprintf("%s %d", e.k, e.n)
	}
	return strings.Join(parts, ", ")
}

// checkSetInts refuses an integer flag given explicitly as 0 or less: 0 is
// the flag's "unset" value (the spec decides), so an explicit 0 or a
// negative count is a mistake, not a request for the spec's value.
func checkSetInts(fs *flag.FlagSet, names ...string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil || !slices.Contains(names, f.Name) {
			return
		}
		if n, perr := strconv.Atoi(f.Value.String()); perr == nil && n < 1 {
			err = usageError("--%s must be at least 1, got %d (leave it out to use the spec's value)", f.Name, n)
		}
	})
	return err
}

// watchFailures follows the study's outcomes and reports on failing (once)
// when the failure streak says the study should stop (see failureStreak).
// Outcomes stored before this run only tell the baseline's fate.
func watchFailures(ctx context.Context, js jetstream.JetStream, studyName string, maxStreak int, needBaseline bool, failing chan<- string) {
	streak := failureStreak{limit: maxStreak, needBaseline: needBaseline}
	live := false
	reported := false
	_ = natsx.Tail(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy(studyName), func(data []byte, _ natsx.Meta) error {
		if reported {
			return nil
		}
		var r events.TrialResult
		if err := json.Unmarshal(data, &r); err != nil || r.Type != events.TypeTrialResult {
			return nil // rejections are not benchmarks
		}
		if streak.observe(r.Trial, r.State == events.StateComplete, r.FailureClass, r.Reason, live) {
			reported = true
			failing <- streak.reason()
		}
		return nil
	}, func() { live = true })
}

// reporterWhenNoneLive runs run once no reporter is live, polling every 5 s.
func reporterWhenNoneLive(ctx context.Context, js jetstream.JetStream, run func() error) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := reporter.LiveReporters(ctx, js); err == nil && n == 0 {
			return run()
		}
	}
}

// loadSpec reads the spec file (or the defaults) and applies the flags' overrides.
func loadSpec(o upOptions) (study.Spec, error) {
	spec := study.Default()
	if o.specFile != "" {
		var err error
		if spec, err = study.LoadFile(o.specFile); err != nil {
			return study.Spec{}, err
		}
	}
	if o.studyName != "" {
		spec.StudyName = o.studyName
	}
	if o.nTrials != 0 {
		spec.NTrials = o.nTrials
	}
	if o.deviceNum != 0 {
		spec.DeviceNum = o.deviceNum
	}
	if o.sampler != "" {
		spec.Sampler.Algorithm = o.sampler
	}
	if o.seedSet {
		spec.Sampler.Seed = o.seed
	}
	if o.maxInFlight > 0 {
		spec.Sampler.MaxInFlight = o.maxInFlight
	}
	if o.startupTimeout < 0 || o.benchmarkTimeout < 0 {
		return study.Spec{}, fmt.Errorf("--startup-timeout and --benchmark-timeout must be positive")
	}
	if o.startupTimeout > 0 {
		spec.Model.StartupTimeout = events.Duration(o.startupTimeout)
		spec.Model.CompileStartupTimeout = events.Duration(o.startupTimeout)
	}
	if o.benchmarkTimeout > 0 {
		spec.Model.BenchmarkTimeout = events.Duration(o.benchmarkTimeout)
	}
	if err := spec.Validate(); err != nil {
		return study.Spec{}, fmt.Errorf("invalid study settings: %w", err)
	}
	// The runners of `up` are on this host: a dataset file that is missing
	// or malformed fails now, naming the file and line, not in every trial.
	if err := runner.CheckWorkload(spec.Workload); err != nil {
		return study.Spec{}, fmt.Errorf("%w: workload: %w", study.ErrInvalidSpec, err)
	}
	return spec, nil
}

// startEmbedded starts the in-process JetStream server on --listen, or on a
// free port when that one is taken (another study running).
func startEmbedded(o upOptions) (srvShutdown, error) {
	host, portStr, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, usageError("--listen %q: want HOST:PORT", o.listen)
	}
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil {
		return nil, usageError("--listen %q: bad port", o.listen)
	}
	if l, err := net.Listen("tcp", net.JoinHostPort(host, portStr)); err == nil && port != 0 {
		l.Close()
	} else {
		if err == nil {
			l.Close()
		}
		port = -1 // taken, or 0: a free port (nats-server reads 0 as 4222)
	}
	srv, err := embedded.Start(embedded.Options{Host: host, Port: port, StoreDir: filepath.Join(o.dataDir, "nats"), SyncAlways: o.syncAlways})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// srvShutdown is the part of the embedded server up needs.
type srvShutdown interface {
	ClientURL() string
	Shutdown()
	WaitForShutdown()
}

func readStudy(ctx context.Context, js jetstream.JetStream, name string) (events.StudyState, error) {
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return events.StudyState{}, err
	}
	st, _, err := natsx.GetJSON[events.StudyState](ctx, kv, name)
	return st, err
}

// waitReported waits until the reporter's front counts every outcome the study has.
func waitReported(ctx context.Context, js jetstream.JetStream, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := readStudy(ctx, js, name)
		if err == nil {
			// Both keys: the reporter writes front.<study>, then front (the
			// latest study's), which users read as `nats kv get pareto front`.
			want := st.Benchmarked + st.Rejected
			doc, ferr := reporter.ReadFront(ctx, js, name)
			latest, lerr := reporter.ReadFront(ctx, js, "")
			latestDone := lerr == nil && (latest.StudyName != name || latest.Counts.Outcomes >= want)
			if ferr == nil && doc.Counts.Outcomes >= want && latestDone {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reporter did not fold every outcome within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// showProgress prints one line whenever the study's counters change.
func showProgress(ctx context.Context, js jetstream.JetStream, name string, w io.Writer, start time.Time) {
	last := ""
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := readStudy(ctx, js, name)
		if err != nil {
			continue
		}
		failed, front := 0, 0
		if doc, err := reporter.ReadFront(ctx, js, name); err == nil {
			failed, front = doc.Counts.Failed, len(doc.ParetoFront)
		}
		running := max(st.Proposed-st.Benchmarked-st.Rejected, 0)
		line := fmt.Sprintf("trials %d/%d benchmarked · %d in flight · %d failed · %d rejected · front %d",
			st.Benchmarked, st.NTrials, running, failed, st.Rejected, front)
		if line != last {
			fmt.Fprintf(w, "[%s] %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
	}
}

func say(w io.Writer, quiet bool, format string, args ...any) {
	if !quiet {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// splitArgs splits a command line into an argv without a shell: spaces
// separate words, single or double quotes group them.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// checkSGLang fails fast when the server command cannot start SGLang: the
// command is missing, or (for python3 -m sglang.launch_server) python cannot
// import sglang. Every trial would otherwise be recorded as a crash.
func checkSGLang(ctx context.Context, command []string) error {
	if len(command) == 0 {
		return fmt.Errorf("model.server_command is empty")
	}
	path, err := exec.LookPath(command[0])
	if err != nil {
		return fmt.Errorf("the server command %q is not installed (%v): install SGLang, set model.server_command, or run with --sim", command[0], err)
	}
	if len(command) >= 3 && command[1] == "-m" && strings.HasPrefix(command[2], "sglang") {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, path, "-c", "import sglang").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s cannot import sglang (%s): install SGLang (pip install sglang), or run with --sim", command[0], lastLine(string(out)))
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
