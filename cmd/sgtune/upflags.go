package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
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

// parseUpFlags reads the flags of `sgtune up` and refuses the ones that make
// no sense on their own (what needs the spec is checked once it is loaded).
func parseUpFlags(args []string, getenv func(string) string, stderr io.Writer) (upOptions, error) {
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
		return o, err
	}
	o.healthAddr = *healthAddr
	if fs.NArg() > 0 {
		return o, usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := checkSetInts(fs, "n-trials", "device-num", "max-in-flight", "gpus"); err != nil {
		return o, err
	}
	if o.maxFailStreak < 0 {
		return o, usageError("--max-consecutive-failures must be 0 (never stop) or more, got %d", o.maxFailStreak)
	}
	return o, nil
}

// readFlags are the flags that let a client read this run's study after it
// exits: the store it left in --data-dir, or the server of --nats-url.
func readFlags(o upOptions) string {
	if o.natsURL != "" {
		return "--nats-url " + o.natsURL
	}
	return "--data-dir " + shellQuote(o.dataDir)
}

// shellQuote quotes s for a shell when it needs it.
func shellQuote(s string) string { return strings.Join(quoteArgs([]string{s}), " ") }
