package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/embedded"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// serviceStack is one embedded NATS server with the validator, one runner
// (exec backend, a simulated host of fleetGPUs GPUs, this program's eval
// subcommand as the benchmark command) and the reporter running on it;
// studies run on it one at a time, each through sampler.Run.
type serviceStack struct {
	dir    string
	srv    *server.Server
	conn   natsx.ConnConfig
	nc     *nats.Conn
	js     jetstream.JetStream
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    zerolog.Logger
	mu     sync.Mutex
	err    error
}

func startStack(worker int, timeScale float64, logf func(string, ...any)) (*serviceStack, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "samplerbench-")
	if err != nil {
		return nil, err
	}
	srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &serviceStack{dir: dir, srv: srv, conn: natsx.ConnConfig{URL: srv.ClientURL()},
		log: zerolog.New(os.Stderr).Level(zerolog.ErrorLevel).With().Timestamp().Int("worker", worker).Logger()}
	if s.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		s.stop()
		return nil, err
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.stop()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	start := func(name string, run func() error) {
		s.wg.Go(func() {
			if err := run(); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				logf("worker %d: %s stopped: %v", worker, name, err)
				s.mu.Lock()
				s.err = fmt.Errorf("%s: %w", name, err)
				s.mu.Unlock()
			}
		})
	}
	vcfg := validator.Config{NATS: s.conn}.Defaults()
	start("validator", func() error { return validator.Run(ctx, vcfg, s.log) })
	start("reporter", func() error { return reporter.Run(ctx, reporter.Config{NATS: s.conn, Quiet: true}, s.log) })
	rcfg := runner.Config{
		NATS: s.conn, RunnerID: fmt.Sprintf("bench-runner-%d", worker), Backend: runner.BackendExec,
		BenchmarkCmd: []string{exe, "eval", "-time-scale", strconv.FormatFloat(timeScale, 'g', -1, 64)},
		GPUs:         fleetGPUs, GPUModel: "H100", LogDir: filepath.Join(dir, "logs"),
		MaxConcurrentTrials: fleetSlots,
	}
	rcfg.SetDefaults()
	start("runner", func() error { return runner.Run(ctx, rcfg, s.log) })
	return s, nil
}

func (s *serviceStack) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	os.RemoveAll(s.dir)
}

// runStudy runs one study through sampler.Run and reads its record back
// from the streams. warm names finished studies on this stack for a warm
// start.
func (s *serviceStack) runStudy(pr *problem, v variant, seed int64, budget int, warm []string) (runResult, error) {
	return s.runNamed(pr, v, seed, budget, studyName(pr.surf.Name(), v.name, seed), warm)
}

func (s *serviceStack) runNamed(pr *problem, v variant, seed int64, budget int, name string, warm []string) (runResult, error) {
	res := runResult{surface: pr.surf.Name(), variant: v.name, seed: seed, budget: budget}
	if v.seedMode {
		return res, fmt.Errorf("%s: the seed's mode (invalid trials hidden) is offline only", v.name)
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return res, err
	}
	spec := pr.spec
	spec.StudyName = name
	spec.NTrials = budget
	spec.Sampler.Algorithm, spec.Sampler.Acquisition, spec.Sampler.Seed = v.algo, "", seed
	spec.Sampler.WarmStart = warm
	if v.startup > 0 {
		spec.Sampler.StartupTrials = v.startup
	}
	cfg := sampler.Config{NATS: s.conn, Spec: spec, Fresh: true, FleetPoll: 200 * time.Millisecond}
	if !v.parallel {
		cfg.MaxInFlight = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := sampler.Run(ctx, cfg, s.log); err != nil {
		return res, fmt.Errorf("study %s: %w", name, err)
	}
	res.wall = time.Since(t0)
	if ctx.Err() != nil {
		return res, fmt.Errorf("study %s: did not finish in 30 minutes", name)
	}
	return s.readStudy(ctx, pr, name, res)
}

// readStudy rebuilds a study's trials from its streams: proposals (when
// each was made) and outcomes (in the order they were stored).
func (s *serviceStack) readStudy(ctx context.Context, pr *problem, name string, res runResult) (runResult, error) {
	proposedAt := map[int]time.Time{}
	err := natsx.Replay(ctx, s.js, events.StreamCandidates, events.CandidatesOfStudy(name), func(data []byte, _ natsx.Meta) error {
		ev, err := events.Decode[events.CandidateProposed](data, events.TypeCandidateProposed)
		if err == nil {
			proposedAt[ev.Trial] = ev.OccurredAt
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var results []events.TrialResult
	var storedAt []time.Time
	err = natsx.Replay(ctx, s.js, events.StreamOutcomes, events.OutcomesOfStudy(name), func(data []byte, _ natsx.Meta) error {
		head, err := events.PeekEnvelope(data)
		if err != nil {
			return nil
		}
		switch head.Type {
		case events.TypeCandidateRejected:
			res.rejected++
		case events.TypeTrialResult:
			if ev, err := events.Decode[events.TrialResult](data, events.TypeTrialResult); err == nil {
				results = append(results, ev)
				storedAt = append(storedAt, ev.OccurredAt)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var t0 time.Time
	for _, at := range proposedAt {
		if t0.IsZero() || at.Before(t0) {
			t0 = at
		}
	}
	firstSeen := map[string]time.Time{}
	var first, last time.Time
	busy := 0.0
	for i, ev := range results {
		rec := trialRecord{trial: ev.Trial, params: ev.Params, proposedAt: proposedAt[ev.Trial].Sub(t0), doneAt: storedAt[i].Sub(t0)}
		switch ev.State {
		case events.StateComplete:
			rec.values = pr.j.values(pr.j.judge(ev.Params, ev.Trial == 0))
		case events.StateFailed:
			rec.failed = true
			rec.cause = causeOf(ev.FailureClass, ev.LogTail, ev.Reason)
			if at, seen := firstSeen[rec.cause]; seen && at.Before(proposedAt[ev.Trial]) {
				rec.knownCause = true
			}
			if _, seen := firstSeen[rec.cause]; !seen {
				firstSeen[rec.cause] = storedAt[i]
			}
		}
		res.trials = append(res.trials, rec)
		if !ev.StartedAt.IsZero() && !ev.FinishedAt.IsZero() {
			busy += float64(len(ev.GPUs)) * ev.FinishedAt.Sub(ev.StartedAt).Seconds()
			if first.IsZero() || ev.StartedAt.Before(first) {
				first = ev.StartedAt
			}
			if ev.FinishedAt.After(last) {
				last = ev.FinishedAt
			}
		}
	}
	if span := last.Sub(first).Seconds(); span > 0 {
		res.gpuBusy = busy / (float64(fleetGPUs) * span)
	}
	return res, nil
}

// studyName names one study: sb_<surface>_<setting>_<seed>. The eval
// subcommand reads the surface (and whether to sleep) from it.
func studyName(surface, variant string, seed int64) string {
	return fmt.Sprintf("sb_%s_%s_%d", surface, variant, seed)
}

// parseStudyName returns the surface and setting of a benchmark study.
func parseStudyName(name string) (surface, variant string, ok bool) {
	parts := strings.Split(name, "_")
	if len(parts) < 4 || !strings.HasPrefix(parts[0], "sb") {
		return "", "", false
	}
	return parts[1], parts[2], true
}
