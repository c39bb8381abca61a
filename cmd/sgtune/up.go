package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// cmdUp runs a whole study in this process (or joins the one another process
// runs): its phases in order, each returning early on its error.
func cmdUp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseUpFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	u := &upRun{o: o, getenv: getenv, stdout: stdout, stderr: stderr}
	defer u.close()
	if err := u.checkSetup(); err != nil {
		return err
	}
	if err := u.openDataDir(); err != nil {
		return err
	}
	if err := u.connectNATS(ctx); err != nil {
		return err
	}
	if err := u.inspectStudy(ctx); err != nil {
		return err
	}
	if err := u.serveLivePage(ctx); err != nil {
		return err
	}
	if err := u.startServices(ctx); err != nil {
		return err
	}
	u.startSampler()
	u.startWatchers()
	if err := u.waitStudy(ctx); err != nil {
		return err
	}
	return u.printResults(ctx)
}

// upRun is one `sgtune up` between its phases: what each phase sets up for
// the later ones, and what cmdUp closes when it returns.
type upRun struct {
	o              upOptions
	getenv         func(string) string
	stdout, stderr io.Writer

	spec          study.Spec
	benchCmd      []string
	runnerGPUs    hostSplit
	logger        zerolog.Logger
	conn          natsx.ConnConfig
	metricsOf     *upMetrics
	js            jetstream.JetStream
	joining       bool
	liveReporters int

	before       int // benchmarked trials the study had before this run
	start        time.Time
	stopServices context.CancelFunc
	g            *errgroup.Group
	gctx         context.Context
	studyDone    chan error
	failing      chan string

	closers []func()
}

// onClose registers f to run when cmdUp returns, as a defer of cmdUp would.
func (u *upRun) onClose(f func()) { u.closers = append(u.closers, f) }

// close runs what the phases registered, last first; deferring each keeps
// a defer's guarantees (the rest still run when one panics).
func (u *upRun) close() {
	for _, f := range u.closers {
		defer f()
	}
}

// checkSetup loads and checks the spec, the backend and the GPUs before
// anything starts.
func (u *upRun) checkSetup() error {
	o, getenv, stderr := u.o, u.getenv, u.stderr
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
	u.spec, u.benchCmd, u.runnerGPUs = spec, benchCmd, runnerGPUs
	return nil
}

// openDataDir creates --data-dir and the logger of this process's services.
func (u *upRun) openDataDir() error {
	o, stderr := u.o, u.stderr
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
		u.onClose(func() { f.Close() })
		logOut = f
	}
	u.logger = newLogger(logOut, o.logLevel)
	return nil
}

// connectNATS starts the embedded NATS server (or takes --nats-url's), serves
// --health-addr, and connects this process with the study's topology in place.
func (u *upRun) connectNATS(ctx context.Context) error {
	o, spec, logger, stderr := u.o, u.spec, u.logger, u.stderr
	conn := natsx.ConnConfigFromEnv(u.getenv)
	if o.natsURL != "" {
		conn.URL = o.natsURL
	} else {
		srv, err := startEmbedded(o)
		if err != nil {
			return err
		}
		u.onClose(func() { srv.Shutdown(); srv.WaitForShutdown() })
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
	u.onClose(nc.Close)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		return err
	}
	u.conn, u.metricsOf, u.js = conn, metricsOf, js
	return nil
}

// inspectStudy checks the stored study against the spec and finds out
// whether another process is running it.
func (u *upRun) inspectStudy(ctx context.Context) error {
	o, spec, js, stderr := u.o, u.spec, u.js, u.stderr
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
	u.joining, u.liveReporters = joining, liveReporters
	return nil
}

// serveLivePage serves the study's live page on --http, when asked for.
func (u *upRun) serveLivePage(ctx context.Context) error {
	o, spec, js, stderr := u.o, u.spec, u.js, u.stderr
	if o.httpAddr != "" {
		url, err := servePage(ctx, o.httpAddr, withMetrics(reporter.PageHandler(js, spec.StudyName), u.metricsOf.gatherers()))
		if err != nil {
			return err
		}
		say(stderr, o.quiet, "sgtune up: the front, plotted: %s", url)
	}
	return nil
}

// startServices starts this process's validator, reporter and runners in one
// group, the runners only once (with real SGLang) the server command can start.
func (u *upRun) startServices(ctx context.Context) error {
	o, spec, conn, js, logger, metricsOf := u.o, u.spec, u.conn, u.js, u.logger, u.metricsOf
	// What the study had before this run, to report this run's own rate.
	before := 0
	if st, err := readStudy(ctx, js, spec.StudyName); err == nil && !o.noLoad {
		before = st.Benchmarked
	}
	start := time.Now()
	svcCtx, stopServices := context.WithCancel(ctx)
	u.onClose(stopServices)
	g, gctx := errgroup.WithContext(svcCtx)
	u.before, u.start, u.stopServices, u.g, u.gctx = before, start, stopServices, g, gctx

	vcfg := validator.Config{NATS: conn, Metrics: metricsOf.service()}
	vcfg.NATS.Name = ""
	vcfg = vcfg.Defaults()
	g.Go(func() error { return validator.Run(gctx, vcfg, logger) })

	rcfg := reporter.Config{NATS: conn, Output: o.output, Quiet: true, Metrics: metricsOf.service()}
	rcfg.NATS.Name = "sgtune-reporter"
	if u.liveReporters > 0 {
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
			BenchmarkCmd: u.benchCmd,
			GPUModel:     o.gpuModel,
			SimTimeScale: o.simScale,
			LogDir:       filepath.Join(o.dataDir, "logs"),
			Metrics:      metricsOf.service(),
		}
		u.runnerGPUs.apply(&cfg, i)
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
	return nil
}

// startSampler starts the study's sampler, whose return is the study's end.
func (u *upRun) startSampler() {
	o, spec, conn, g, gctx, logger, stderr := u.o, u.spec, u.conn, u.g, u.gctx, u.logger, u.stderr
	// Joining, the sampler stands by: it takes the study over only if its
	// owner's lease expires, and returns when the owner completes it.
	scfg := sampler.Config{NATS: conn, Spec: spec, Fresh: o.noLoad, AllowSpecChange: o.allowChange, Metrics: u.metricsOf.service()}
	if !u.joining {
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
	u.studyDone = studyDone
}

// startWatchers starts the progress lines (unless --quiet) and the watch of
// the failure streak (unless --max-consecutive-failures 0).
func (u *upRun) startWatchers() {
	o, spec, js, g, gctx, stderr, start := u.o, u.spec, u.js, u.g, u.gctx, u.stderr, u.start
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
	u.failing = failing
}

// waitStudy waits for the study to complete and be reported, to stop on its
// failure streak, or for a service to fail; then it stops the services.
func (u *upRun) waitStudy(ctx context.Context) error {
	spec, js, g, gctx := u.spec, u.js, u.g, u.gctx
	// The study is complete when the sampler returns; then wait for the reporter to
	// fold the last outcomes before stopping everything.
	var runErr error
	select {
	case err := <-u.studyDone:
		if err == nil && ctx.Err() == nil {
			runErr = waitReported(ctx, js, spec.StudyName, 30*time.Second)
		} else if err != nil {
			runErr = err
		}
	case reason := <-u.failing:
		runErr = fmt.Errorf("study %q stopped: %s", spec.StudyName, reason)
	case <-gctx.Done():
	}
	u.stopServices()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		runErr = err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; finished trials are kept: run the same command again to resume")
	}
	return runErr
}

// printResults writes --output, prints the front on stdout and says on
// stderr how the study went and how to read it later.
func (u *upRun) printResults(ctx context.Context) error {
	o, spec, js, stdout, stderr := u.o, u.spec, u.js, u.stdout, u.stderr
	elapsed := time.Since(u.start)
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
	if ran := st.Benchmarked - u.before; ran > 0 {
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
