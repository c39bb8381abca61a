package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

// Version is the SGLang version the simulator reports.
const Version = "0.5.5"

// ExitCode maps Run's error to the process exit status SGLang would have:
// 0 on a clean shutdown (or --help), 2 for a command-line error (argparse),
// 1 for every other failure.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// Run is sglang-sim's main: it parses sglang.launch_server flags from args
// (without the program name), reads the SGTUNE_SIM_* knobs through getenv,
// and serves SGLang's HTTP API until ctx is cancelled, then shuts down
// gracefully and returns nil. It writes logs, and every failure, to stderr
// exactly as it wants them seen, so callers should exit with ExitCode(err)
// without printing err again. --help writes to stdout.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	lg := newLogger(stderr)
	sa, err := parseArgs(newFlagTable(flagSources()...), args)
	if errors.Is(err, errHelp) {
		_, _ = fmt.Fprint(stdout, usageText)
		return nil
	}
	if err != nil {
		lg.raw("%s%s\n", usageLine, err)
		return err
	}
	env, err := loadEnv(getenv)
	if err != nil {
		lg.raw("%s\n", err)
		return err
	}
	if env.fault == FaultIgnoreSIGTERM {
		signal.Ignore(syscall.SIGTERM)
	}
	if !env.seedSet {
		if sa.has("random_seed") {
			env.seed = uint64(sa.int("random_seed"))
		} else {
			env.seed = rand.Uint64()
		}
	}
	switch strings.ToLower(sa.str("log_level")) {
	case "warning", "error", "critical":
		lg.quiet = true
	}
	mdl := pickModel(sa.str("model_path"), env.modelName)
	s := &server{
		lg: lg, sa: sa, env: env, mdl: mdl,
		stop:  make(chan struct{}),
		fatal: make(chan error, 1),
		rng:   rand.New(rand.NewPCG(env.seed, 0x51a6)),
	}
	s.noise0 = s.launchNoise()

	plan, perr := model.NewPlan(sa.config(), env.hw, mdl)
	if sa.has("speculative_algorithm") {
		plan, perr = nil, &model.LaunchError{Class: model.ClassCrash, Phase: model.PhaseArgs, Exception: "NotImplementedError",
			Message: "sglang-sim does not simulate speculative decoding (--speculative-algorithm " + sa.str("speculative_algorithm") + ")"}
	}
	var le *model.LaunchError
	if errors.As(perr, &le) && le.Phase == model.PhaseArgs {
		s.printArgsTraceback(le)
		return le
	}
	s.plan = plan
	s.launchErr = le
	gpus, err := startGPUState(getenv, s) // the fake NVML host's memory (gpustate.go)
	if err != nil {
		lg.raw("RuntimeError: %s\n", err)
		return err
	}
	defer gpus.stop()
	lg.info("", "server_args=%s", s.serverArgsRepr())

	host := sa.str("host")
	if host == "" {
		host = "127.0.0.1"
	}
	port := 30000
	if sa.has("port") {
		port = sa.int("port")
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		lg.raw("ERROR:    [Errno 98] error while attempting to bind on address ('%s', %d): address already in use\n", host, port)
		return fmt.Errorf("couldn't listen on %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	s.startAt = time.Now()
	httpSrv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 30 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	lg.infoRaw("INFO:     Started server process [%d]\nINFO:     Waiting for application startup.\nINFO:     Application startup complete.\n", os.Getpid())
	lg.infoRaw("INFO:     Uvicorn running on http://%s (Press CTRL+C to quit)\n", addr)

	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.startup(runCtx)
	}()

	var result error
	select {
	case <-ctx.Done():
		lg.infoRaw("INFO:     Shutting down\n")
	case result = <-s.fatal:
	case err := <-serveErr:
		result = fmt.Errorf("http server: %w", err)
	}
	s.state.Store(stateStopping)
	close(s.stop)
	cancel()
	if result != nil {
		_ = httpSrv.Close()
	} else {
		// Open streams end as soon as stop is closed; wait for their
		// handlers so that Shutdown finds every connection idle at once.
		handlersDone := make(chan struct{})
		go func() {
			s.inflight.Wait()
			close(handlersDone)
		}()
		select {
		case <-handlersDone:
		case <-time.After(time.Second):
		}
		shCtx, shCancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := httpSrv.Shutdown(shCtx); err != nil {
			_ = httpSrv.Close()
		}
		shCancel()
		lg.infoRaw("INFO:     Waiting for application shutdown.\nINFO:     Application shutdown complete.\nINFO:     Finished server process [%d]\n", os.Getpid())
	}
	wg.Wait()
	return result
}

func pickModel(path, preset string) model.Model {
	if m, ok := model.ModelForPath(path); ok {
		return m
	}
	if m, ok := model.ModelPreset(preset); ok {
		return m
	}
	m, _ := model.ModelPreset(model.DefaultModelName)
	return m
}

const usageLine = "usage: sglang-sim [-h] --model-path MODEL_PATH [--tp-size TP_SIZE] [--dp-size DP_SIZE] [...]\n"

const usageText = usageLine + `
sglang-sim: an SGLang-compatible simulated server (sgtune). It accepts
sglang.launch_server's flags and serves SGLang's HTTP API with timing from a
performance model. Simulator knobs come from the environment:
  SGTUNE_SIM_GPU           GPU preset (H100, H200, A100-80G, A100-40G, L40S, A10, B200)
  SGTUNE_SIM_MODEL         model preset when --model-path is not recognised
  SGTUNE_SIM_TIME_SCALE    multiplies the startup time (default 1)
  SGTUNE_SIM_NOISE         relative noise stddev (default 0.03)
  SGTUNE_SIM_SEED          noise seed
  SGTUNE_SIM_FAULT         crash-at-start | slow-start | oom-under-load | hang-during-bench | ignore-sigterm | never-healthy
  SGTUNE_SIM_FAULT_AFTER   requests before oom-under-load / hang-during-bench strike (default 5)
  SGTUNE_SIM_FAULT_SECONDS startup seconds of slow-start (default 30)
  CUDA_VISIBLE_DEVICES     the GPUs it may use (default one)
`

// Server states.
const (
	stateStarting int32 = iota
	stateReady
	stateStopping
)

// server is one simulated SGLang server.
type server struct {
	lg        *logger
	sa        *serverArgs
	env       simEnv
	mdl       model.Model
	plan      *model.Plan
	launchErr *model.LaunchError
	addr      string

	state    atomic.Int32
	hung     atomic.Bool
	stop     chan struct{}
	fatal    chan error
	fatalOne sync.Once

	inflight sync.WaitGroup // HTTP handlers running

	replicas  []*replica // written once by startup, then published by repsReady
	repsReady atomic.Bool
	rr        atomic.Uint64
	nreq      atomic.Int64
	ridSeq    atomic.Uint64
	startAt   time.Time
	readyAt   atomic.Int64

	rngMu  sync.Mutex
	rng    *rand.Rand
	noise0 float64

	timings timingStore
}

// die reports a fatal error once: the process exits non-zero.
func (s *server) die(err error) {
	s.fatalOne.Do(func() { s.fatal <- err })
}

// launchNoise is the per-launch systematic speed factor.
func (s *server) launchNoise() float64 {
	return s.gaussFactor(s.rng, 0.7, 1.3)
}

func (s *server) gaussFactor(r *rand.Rand, lo, hi float64) float64 {
	if s.env.noise == 0 {
		return 1
	}
	return math.Min(hi, math.Max(lo, 1+r.NormFloat64()*s.env.noise))
}

// sleepScaled waits seconds*time scale, or until ctx ends; false on ctx end.
func (s *server) sleepScaled(ctx context.Context, seconds float64) bool {
	return sleepFor(ctx, time.Duration(seconds*s.env.timeScale*float64(time.Second)))
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// rank is the log prefix of the first scheduler process.
func (s *server) rank() string {
	if s.plan != nil && s.plan.Config.DP > 1 {
		return "DP0 TP0"
	}
	return "TP0"
}

// startup plays the modelled startup: logs, phase durations, failures.
func (s *server) startup(ctx context.Context) {
	lg, r := s.lg, s.rank()
	if s.env.fault == FaultSlowStart {
		if !sleepFor(ctx, time.Duration(s.env.faultSeconds*float64(time.Second))) {
			return
		}
	}
	var phases []model.StartupPhase
	if s.plan != nil {
		phases = s.plan.StartupPhases()
	} else {
		phases = []model.StartupPhase{{Name: "init", Seconds: 6}, {Name: "load", Seconds: 8}, {Name: "kv", Seconds: 1}}
	}
	dur := map[string]float64{}
	for _, ph := range phases {
		dur[ph.Name] = ph.Seconds * s.noise0
	}
	if s.env.fault == FaultSlowStart {
		clear(dur)
	}
	failAt := func(phase string) bool {
		if s.launchErr != nil && s.launchErr.Phase == phase {
			s.printSchedulerTraceback(s.launchErr)
			s.die(s.launchErr)
			return true
		}
		return false
	}
	if s.sa.str("attention_backend") == "" && s.plan != nil {
		lg.info(r, "Attention backend not explicitly specified. Use %s backend by default.", s.plan.Config.AttentionBackend)
	}
	for _, n := range s.notes() {
		lg.info("", "%s", n)
	}
	lg.info(r, "Init torch distributed begin.")
	if !s.sleepScaled(ctx, dur["init"]) || failAt(model.PhaseInit) {
		return
	}
	lg.info(r, "Init torch distributed ends. mem usage=0.00 GB")
	hw := s.env.hw
	avail := hw.MemoryGB - 0.6
	lg.info(r, "Load weight begin. avail mem=%.2f GB", avail)
	if s.env.fault == FaultCrashAtStart {
		if !s.sleepScaled(ctx, dur["load"]/3) {
			return
		}
		le := &model.LaunchError{Class: model.ClassCrash, Phase: model.PhaseLoad, Exception: "RuntimeError",
			Message: "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1"}
		s.printSchedulerTraceback(le)
		s.die(le)
		return
	}
	if !s.sleepScaled(ctx, dur["load"]) || failAt(model.PhaseLoad) {
		return
	}
	p := s.plan
	if p == nil { // failed in a later phase without a plan
		failAt(s.launchErr.Phase)
		return
	}
	avail -= p.WeightGB
	lg.info(r, "Load weight end. type=%s, dtype=torch.bfloat16, avail mem=%.2f GB, mem usage=%.2f GB.", s.mdl.Architecture, avail, p.WeightGB)
	if !s.sleepScaled(ctx, dur["kv"]) || failAt(model.PhaseKV) {
		return
	}
	half := p.KVPoolGB / 2
	lg.info(r, "KV Cache is allocated. #tokens: %d, K size: %.2f GB, V size: %.2f GB", p.MaxTotalTokens/p.AttnDP, half, half)
	avail -= p.KVPoolGB
	lg.info(r, "Memory pool end. avail mem=%.2f GB", avail)
	if failAt(model.PhaseAttention) {
		return
	}
	if p.CudaGraph {
		lg.info(r, "Capture cuda graph begin. This can take up to several minutes. avail mem=%.2f GB", avail)
		lg.info(r, "Capture cuda graph bs %s", pyList(p.CaptureBS))
		if !s.sleepScaled(ctx, dur["graph"]+dur["compile"]) || failAt(model.PhaseGraph) {
			return
		}
		avail -= p.GraphGB
		lg.info(r, "Capture cuda graph end. Time elapsed: %.2f s. mem usage=%.2f GB. avail mem=%.2f GB.", dur["graph"]+dur["compile"], p.GraphGB, avail)
	}
	c := p.Config
	lg.info(r, "max_total_num_tokens=%d, chunked_prefill_size=%d, max_prefill_tokens=%d, max_running_requests=%d, context_len=%d, available_gpu_mem=%.2f GB",
		p.MaxTotalTokens, c.ChunkedPrefillSize, c.MaxPrefillTokens, p.MaxRunningRequests, c.ContextLength, avail)

	// Schedulers.
	var wg sync.WaitGroup
	for i := range p.Replicas {
		rep := newReplica(s, i)
		s.replicas = append(s.replicas, rep)
	}
	s.repsReady.Store(true)
	for _, rep := range s.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.run(ctx)
		}()
	}
	if !p.Config.SkipServerWarmup {
		if !s.sleepScaled(ctx, dur["warmup"]) {
			wg.Wait()
			return
		}
		lg.infoRaw("INFO:     127.0.0.1:0 - \"GET /get_model_info HTTP/1.1\" 200 OK\n")
		lg.info(r, "Prefill batch. #new-seq: 1, #new-token: 7, #cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0, ")
		lg.infoRaw("INFO:     127.0.0.1:0 - \"POST /generate HTTP/1.1\" 200 OK\n")
	}
	s.readyAt.Store(time.Now().UnixNano())
	s.state.CompareAndSwap(stateStarting, stateReady)
	lg.info("", "The server is fired up and ready to roll!")
	wg.Wait()
}

// reps returns the replicas once startup has created them, else nil.
func (s *server) reps() []*replica {
	if !s.repsReady.Load() {
		return nil
	}
	return s.replicas
}

func (s *server) notes() []string {
	if s.plan == nil {
		return nil
	}
	return s.plan.Notes
}

// printArgsTraceback prints a ServerArgs validation failure the way
// `python -m sglang.launch_server` dies with it.
func (s *server) printArgsTraceback(le *model.LaunchError) {
	s.lg.raw(`Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/sgl-workspace/sglang/python/sglang/launch_server.py", line 11, in <module>
    server_args = prepare_server_args(sys.argv[1:])
  File "/sgl-workspace/sglang/python/sglang/srt/server_args.py", line 3710, in prepare_server_args
    return ServerArgs.from_cli_args(raw_args)
  File "/sgl-workspace/sglang/python/sglang/srt/server_args.py", line 3340, in from_cli_args
    return cls(**{attr: getattr(args, attr) for attr in attrs})
  File "<string>", line 276, in __init__
  File "/sgl-workspace/sglang/python/sglang/srt/server_args.py", line 541, in __post_init__
    self.check_server_args()
%s
`, le.Error())
}

var phaseFrames = map[string]string{
	model.PhaseInit:      "    self.init_torch_distributed()\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 612, in init_torch_distributed\n    torch.get_device_module(self.device).set_device(self.gpu_id)\n",
	model.PhaseLoad:      "    self.load_model()\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 780, in load_model\n    self.model = get_model(\n",
	model.PhaseKV:        "    self.init_memory_pool(min_per_gpu_memory, server_args.max_running_requests, server_args.max_total_tokens)\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 1502, in init_memory_pool\n    raise RuntimeError(\n",
	model.PhaseAttention: "    self.init_attention_backend()\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 1688, in init_attention_backend\n    self.attn_backend = self._get_attention_backend()\n",
	model.PhaseGraph:     "    self.init_device_graphs()\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/cuda_graph_runner.py\", line 389, in __init__\n    raise Exception(\n",
	model.PhaseRuntime:   "    self.event_loop_overlap()\n  File \"/sgl-workspace/sglang/python/sglang/srt/managers/scheduler.py\", line 1012, in event_loop_overlap\n    batch_result = self.run_batch(batch)\n  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 2011, in forward_extend\n    return self.model.forward(\n",
}

// printSchedulerTraceback prints a scheduler-process failure and the
// launcher's reaction, as SGLang does.
func (s *server) printSchedulerTraceback(le *model.LaunchError) {
	frames := phaseFrames[le.Phase]
	s.lg.logf(s.rank(), "Scheduler hit an exception: Traceback (most recent call last):\n"+
		"  File \"/sgl-workspace/sglang/python/sglang/srt/managers/scheduler.py\", line 2911, in run_scheduler_process\n"+
		"    scheduler = Scheduler(server_args, port_args, gpu_id, tp_rank, moe_ep_rank, pp_rank, dp_rank)\n"+
		"  File \"/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py\", line 330, in initialize\n"+
		"%s%s\n", frames, le.Error())
	s.lg.logf("", "Received sigquit from a child process. It usually means the child failed.")
}
