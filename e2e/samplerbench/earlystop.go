package main

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
	"github.com/sgtune/sgtune/sim"
	"github.com/sgtune/sgtune/sim/model"
)

// The early-stopping benchmark (`-early-stop`, issue 12.6): the same
// studies with and without sampler.early_stop, same seeds, on the
// simulator's model, scored by the GPU time they need to reach 90 % of the
// best known front and by their front after the whole budget.
//
// Each trial costs its GPUs times its wall time: the simulator's own
// (unscaled) start-up time, then the benchmark as the model times it. While
// it runs, the trial reports what it measured at the runner's checkpoints
// (trial.CheckpointFractions of its requests): the model's metrics of its
// first k requests (the same systematic first-wave bias a real partial
// measurement has) with the simulator's 3 % noise, at the time those k
// requests took. The sampler's own decision (sampler.InProcess.ShouldStop,
// the code the bus runs) stops it or not; a stopped trial costs its GPUs up
// to that checkpoint and is told as PRUNED with those partial metrics.

// esCheckpoints mirror services/runner/internal/trial.CheckpointFractions.
var esCheckpoints = []float64{0.1, 0.2, 0.35, 0.5, 0.65}

// esWorkload is one workload the benchmark measures trials with.
type esWorkload struct {
	name       string
	numPrompts int
}

// esWorkloads: the default study's benchmark, and one four times as long
// (a long benchmark, as a ladder or a capacity search with levels sized
// for their p99 is), where the benchmark, not the start-up, is most of a
// trial's GPU time.
var esWorkloads = []esWorkload{{"default (256 prompts)", 256}, {"long (1024 prompts)", 1024}}

// esCase is one row pair of the report.
type esCase struct {
	wl   esWorkload
	algo string
}

// esCases: the default sampler on both workloads, and random search (a
// sampler that proposes many hopeless trials) on the long one.
func esCases() []esCase {
	return []esCase{
		{esWorkloads[0], study.AlgoGPEHVI}, {esWorkloads[1], study.AlgoGPEHVI}, {esWorkloads[1], study.AlgoRandom},
	}
}

// esEval measures configurations on the simulator's model, fully and at
// each checkpoint, with their times; cached by configuration. Safe for
// concurrent use.
type esEval struct {
	spec   study.Spec
	preset string
	hw     model.Hardware
	mu     sync.Mutex
	memo   map[string]*esMeasure
}

// esMeasure is a configuration's noise-free measurement: invalid, failed at
// launch, or its start-up, full run and checkpoint runs.
type esMeasure struct {
	rejected  bool
	rules     []string
	canonical string
	gpus      int
	failed    bool
	class     string
	stderr    string
	startup   float64 // seconds to healthy
	full      model.Result
	points    []esPoint // one per checkpoint
}

// esPoint is what a runner's checkpoint would have measured: at the time
// the k-th request finished (seconds into the benchmark), the finished
// requests' TTFT, and the output tokens every stream had sent by then over
// the time (the load generator's Checkpoint.Metrics).
type esPoint struct {
	at       float64
	requests int
	metrics  map[string]float64
}

// checkpointsOf rebuilds the checkpoints of a run from its requests'
// timelines.
func checkpointsOf(r model.Result, fracs []float64) []esPoint {
	n := len(r.Requests)
	fin := make([]float64, n)
	for i, q := range r.Requests {
		fin[i] = q.Finish
	}
	slices.Sort(fin)
	var out []esPoint
	for _, f := range fracs {
		k := int(f * float64(n))
		if k < 1 {
			continue
		}
		at := fin[k-1]
		var ttft []float64
		streamed := 0.0
		for _, q := range r.Requests {
			switch {
			case q.Finish <= at:
				ttft = append(ttft, (q.First-q.Send)*1000)
				streamed += float64(q.Out)
			case q.First <= at && q.Finish > q.First:
				streamed += 1 + float64(q.Out-1)*(at-q.First)/(q.Finish-q.First)
			}
		}
		if at <= 0 || len(ttft) == 0 {
			continue
		}
		slices.Sort(ttft)
		mean := 0.0
		for _, v := range ttft {
			mean += v / float64(len(ttft))
		}
		out = append(out, esPoint{at: at, requests: len(ttft), metrics: map[string]float64{
			"mean_ttft_ms": mean, "p99_ttft_ms": ttft[int(0.99*float64(len(ttft)-1))],
			"output_throughput": streamed / at, "completed": float64(len(ttft)),
		}})
	}
	return out
}

func newESEval(spec study.Spec, gpu, preset string) *esEval {
	hw, ok := model.GPUPreset(gpu)
	if !ok {
		panic("samplerbench: unknown GPU preset " + gpu)
	}
	return &esEval{spec: spec, preset: preset, hw: hw, memo: map[string]*esMeasure{}}
}

func (e *esEval) measure(p events.Params, baseline bool) *esMeasure {
	k := study.ParamsKey(p)
	if baseline {
		k = "baseline:" + k
	}
	e.mu.Lock()
	m, ok := e.memo[k]
	e.mu.Unlock()
	if ok {
		return m
	}
	m = e.fresh(p, baseline)
	e.mu.Lock()
	e.memo[k] = m
	e.mu.Unlock()
	return m
}

func (e *esEval) fresh(p events.Params, baseline bool) *esMeasure {
	cv, err := validator.Check(e.spec, p, validator.CheckOptions{Baseline: baseline})
	switch {
	case err != nil:
		return &esMeasure{rejected: true, rules: []string{"safety.bad_input"}}
	case !cv.Valid:
		m := &esMeasure{rejected: true}
		for _, r := range cv.Rejections {
			m.rules = append(m.rules, r.Rule)
		}
		return m
	}
	m := &esMeasure{canonical: cv.CanonicalHash, gpus: max(cv.GPUs, 1)}
	cfg, mdl, err := sim.ParseLaunch(cv.LaunchArgs, e.preset)
	if err != nil {
		m.failed, m.class, m.stderr, m.startup = true, events.FailCrash, "sglang-sim: error: "+err.Error(), 5
		return m
	}
	hw := e.hw
	hw.NumGPUs = m.gpus
	w := e.spec.Workload
	full, err := model.Evaluate(cfg, hw, mdl, model.Workload{
		NumPrompts: w.NumPrompts, InputLen: w.RandomInputLen, OutputLen: w.RandomOutputLen,
		RangeRatio: w.RandomRangeRatio, MaxConcurrency: w.MaxConcurrency, RequestRate: w.RequestRate, Seed: w.Seed,
	})
	var le *model.LaunchError
	switch {
	case errors.As(err, &le):
		m.failed, m.class, m.stderr = true, le.Class, le.Exception+": "+le.Message
		// A launch that fails dies during start-up, about half-way.
		m.startup = 0.5 * 30
		if full.StartupSeconds > 0 {
			m.startup = 0.5 * full.StartupSeconds
		}
		return m
	case err != nil:
		m.failed, m.class, m.stderr, m.startup = true, events.FailBenchError, "bench error: "+err.Error(), 30
		return m
	}
	m.startup, m.full = full.StartupSeconds, full
	m.points = checkpointsOf(full, esCheckpoints)
	m.full.Requests = nil // keep the memo small
	return m
}

// esMetrics are the metrics a measurement reports, with the simulator's 3 %
// lognormal noise on the objectives.
func esMetrics(m map[string]float64, noise func(float64) float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	out["mean_ttft_ms"] = noise(out["mean_ttft_ms"])
	out["output_throughput"] = noise(out["output_throughput"])
	return out
}

// esTrial is one trial of an early-stopping study: launched, then
// checkpoint by checkpoint until it ends or is stopped.
type esTrial struct {
	prop   sampler.InProcessProposal
	m      *esMeasure
	queued float64
	start  float64
	next   int // next checkpoint
	end    float64
	values []float64 // noise-free objective values when it completes feasibly
}

// expectedDuration is how long a trial runs to its end (no early stop).
func (m *esMeasure) expectedDuration() float64 {
	if m.failed {
		return m.startup
	}
	return m.startup + m.full.DurationS
}

// esEvent is a trial reaching a checkpoint (cp >= 0) or its end (cp < 0).
type esEvent struct {
	at float64
	t  *esTrial
	cp int
}

type esQueue []esEvent

func (q esQueue) Len() int           { return len(q) }
func (q esQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q esQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *esQueue) Push(x any)        { *q = append(*q, x.(esEvent)) }
func (q *esQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// esRun is one study: per finished trial in time order, when it ended,
// the GPU-seconds spent by then, and its noise-free values if it
// completed feasibly.
type esRun struct {
	ends, gpuSecs []float64
	values        [][]float64
	pruned        int
	prunedValues  [][]float64 // pruned trials' full noise-free values (nil: infeasible)
	benchmarked   int
	totalGPUSecs  float64
}

// runEarlyStop runs one study of spec (early stopping on or off) with
// capacity trials in flight on a fleet of fleetGPUs GPUs.
func runEarlyStop(spec study.Spec, algo string, ev *esEval, j *judge, seed int64, budget, capacity int, early bool) (esRun, error) {
	var res esRun
	spec.StudyName = fmt.Sprintf("es-%s-%t-%d", algo, early, seed)
	spec.NTrials = budget
	spec.Sampler.EarlyStop = early
	st, err := sampler.NewInProcess(spec, sampler.InProcessOptions{Algorithm: algo, Seed: &seed})
	if err != nil {
		return res, err
	}
	var q esQueue
	var running []*esTrial
	var waiting []*esTrial
	free := fleetGPUs
	canon := map[string]bool{}
	now := 0.0
	// gpuSecsAt: GPU-seconds spent by time t by every trial started so far.
	var started []*esTrial
	gpuSecsAt := func(t float64) float64 {
		s := 0.0
		for _, x := range started {
			end := x.end
			if end == 0 || end > t {
				end = t
			}
			if end > x.start {
				s += float64(x.m.gpus) * (end - x.start)
			}
		}
		return s
	}
	launch := func(t *esTrial) {
		free -= t.m.gpus
		t.start = now
		started = append(started, t)
		running = append(running, t)
		if t.m.failed {
			heap.Push(&q, esEvent{at: now + t.m.startup, t: t, cp: -1})
			return
		}
		if early && len(t.m.points) > 0 {
			heap.Push(&q, esEvent{at: now + t.m.startup + t.m.points[0].at, t: t, cp: 0})
		}
		heap.Push(&q, esEvent{at: now + t.m.startup + t.m.full.DurationS, t: t, cp: -1})
	}
	var finished finishedDurations
	finish := func(t *esTrial, at float64) {
		t.end = at
		free += t.m.gpus
		finished.add(at - t.start)
		running = slices.DeleteFunc(running, func(x *esTrial) bool { return x == t })
		res.ends = append(res.ends, at)
		res.gpuSecs = append(res.gpuSecs, gpuSecsAt(at))
		res.values = append(res.values, t.values)
		res.benchmarked++
	}
	rng := func(trial, step int) func(float64) float64 {
		r := trialRNG(spec.StudyName, trial*16+step)
		return func(v float64) float64 { return lognormal(v, 0.03, r) }
	}
	for {
		done, _ := st.Done(time.Unix(0, 0))
		if !done {
			if room := st.Room(capacity); room > 0 {
				props, err := st.Propose(room)
				if err != nil && len(props) == 0 {
					return res, err
				}
				for _, p := range props {
					m := ev.measure(p.Params, p.Sampler == "baseline")
					if m.rejected || (canon[m.canonical] && p.RepeatOf == nil) {
						evr := events.CandidateRejected{Envelope: events.Envelope{Study: spec.StudyName, Trial: p.Trial}, Params: p.Params}
						for _, r := range m.rules {
							evr.Rejections = append(evr.Rejections, events.Rejection{Rule: r})
						}
						if !m.rejected {
							d := 0
							evr.Rejections, evr.DuplicateOf = []events.Rejection{{Rule: "dedup.canonical"}}, &d
						}
						if err := st.TellRejection(evr); err != nil {
							return res, err
						}
						continue
					}
					canon[m.canonical] = true
					waiting = append(waiting, &esTrial{prop: p, m: m, queued: now})
				}
				if len(props) > 0 {
					continue
				}
			}
		}
		// Start what fits, with the runner's reservation for a large trial
		// that waited (schedule.go); a running trial is expected to run to
		// its end, as the runner expects.
		sq := make([]schedJob, len(waiting))
		for i, t := range waiting {
			sq[i] = schedJob{gpus: t.m.gpus, queuedAt: t.queued, duration: t.m.expectedDuration()}
		}
		sr := make([]schedRunning, len(running))
		for i, t := range running {
			sr[i] = schedRunning{t.m.gpus, t.start + t.m.expectedDuration()}
		}
		starts := toStart(sq, sr, free, now, finished)
		var still []*esTrial
		for i, t := range waiting {
			if starts[i] {
				launch(t)
			} else {
				still = append(still, t)
			}
		}
		waiting = still
		if q.Len() == 0 {
			if done || len(waiting) == 0 {
				break
			}
			return res, fmt.Errorf("a trial needs %d GPUs, the fleet has %d", waiting[0].m.gpus, fleetGPUs)
		}
		e := heap.Pop(&q).(esEvent)
		t := e.t
		if t.end > 0 {
			continue // stopped before this event
		}
		now = e.at
		base := events.TrialResult{Envelope: events.Envelope{Study: spec.StudyName, Trial: t.prop.Trial}, Params: t.prop.Params, Backend: "sim"}
		switch {
		case e.cp >= 0:
			pt := t.m.points[e.cp]
			pm := esMetrics(pt.metrics, rng(t.prop.Trial, e.cp+1))
			meas := events.Measurement{Step: e.cp + 1, Fraction: float64(pt.requests) / float64(spec.Workload.NumPrompts), Requests: pt.requests, Metrics: pm}
			stop, why := st.ShouldStop(t.prop.Trial, meas)
			if esTrace != nil {
				esTrace(t.prop.Trial, e.cp, stop, why)
			}
			if stop {
				base.State, base.Metrics = events.StatePruned, pm
				base.GPUSeconds = float64(t.m.gpus) * (now - t.start)
				res.pruned++
				res.prunedValues = append(res.prunedValues, j.values(verdictOf(t.m)))
				finish(t, now)
				if err := st.TellResult(base); err != nil {
					return res, err
				}
				continue
			}
			if n := e.cp + 1; n < len(t.m.points) {
				heap.Push(&q, esEvent{at: t.start + t.m.startup + t.m.points[n].at, t: t, cp: n})
			}
		default:
			base.GPUSeconds = float64(t.m.gpus) * (now - t.start)
			if t.m.failed {
				base.State, base.FailureClass = events.StateFailed, t.m.class
				base.Reason = "benchmark command failed: exit status 1; stderr: " + t.m.stderr
				base.LogTail = base.Reason
			} else {
				base.State, base.Metrics = events.StateComplete, esMetrics(t.m.full.Metrics(), rng(t.prop.Trial, 0))
				t.values = j.values(verdictOf(t.m))
			}
			finish(t, now)
			if err := st.TellResult(base); err != nil {
				return res, err
			}
		}
	}
	res.totalGPUSecs = gpuSecsAt(math.Inf(1))
	return res, nil
}

// verdictOf is the judge's view of a completed measurement (its
// noise-free objectives).
func verdictOf(m *esMeasure) verdict {
	if m.failed {
		return verdict{m: Measurement{Failed: true}}
	}
	return verdict{m: Measurement{Metrics: m.full.Metrics()}}
}

// esScore scores studies of one workload: the fixed reference point and
// the best known front (noise-free values).
type esScore struct {
	dirs  []study.Direction
	ref   []float64
	best  []Member
	bestH float64
}

// hvUpTo is the hypervolume of the feasible trials among the first n finished.
func (r esRun) hvUpTo(sc *esScore, n int) float64 {
	var pts [][]float64
	for _, v := range r.values[:min(n, len(r.values))] {
		if v != nil {
			pts = append(pts, v)
		}
	}
	return study.Hypervolume(pts, sc.dirs, sc.ref)
}

// gpuSecsTo is the GPU-seconds spent when the study's hypervolume first
// reached frac of the best known (NaN: never).
func (r esRun) gpuSecsTo(sc *esScore, frac float64) float64 {
	for n := 1; n <= len(r.values); n++ {
		if r.hvUpTo(sc, n) >= frac*sc.bestH {
			return r.gpuSecs[n-1]
		}
	}
	return math.NaN()
}

// earlyStopBench runs the benchmark and writes its report.
func earlyStopBench(o options, w io.Writer, logf func(string, ...any)) error {
	surf := newSimSurface("sim-h100-llama8b", "H100", "llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", false)
	pr, err := loadProblem(surf, o.refDir, o.searchRandom, o.searchPairs, o.workers, logf)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Early stopping (sampler.early_stop) on %s: %d trials in flight on %d GPUs, budget %d, seeds 1-%d, the same seeds with and without.\n",
		surf.Name(), fleetSlots, fleetGPUs, o.budget, o.seeds)
	fmt.Fprintf(w, "GPU-seconds: each trial's GPUs x (the simulator's unscaled start-up + its benchmark as the model times it); a pruned trial up to its stop.\n\n")
	fmt.Fprintf(w, "| workload, sampler | early stop | GPU-s to 90 %% of the best front: median (min-max) | reached | HV @%d / best (median) | pruned share (median) | pruned that would have joined their study's front | GPU-s for %d trials (median) |\n", o.budget, o.budget)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, c := range esCases() {
		wl, algo := c.wl, c.algo
		spec := surf.Spec()
		spec.Workload.NumPrompts = wl.numPrompts
		ev := newESEval(spec, "H100", "llama-3.1-8b")
		j := newJudge(surf)
		runs := map[bool][]esRun{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, o.workers)
		var firstErr error
		for seed := int64(1); seed <= int64(o.seeds); seed++ {
			for _, early := range []bool{false, true} {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					r, err := runEarlyStop(spec, algo, ev, j, seed, o.budget, fleetSlots, early)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						firstErr = err
						return
					}
					runs[early] = append(runs[early], r)
				}()
			}
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		// The best known front of this workload: the default workload's
		// best configurations measured on it, and everything any study
		// measured (pruned trials' full values included).
		var all []Member
		for _, m := range pr.best {
			if v := j.values(verdictOf(ev.measure(m.Params, false))); v != nil {
				all = append(all, Member{Params: m.Params, Values: v})
			}
		}
		for _, rs := range runs {
			for _, r := range rs {
				for _, v := range append(slices.Clone(r.values), r.prunedValues...) {
					if v != nil {
						all = append(all, Member{Values: v})
					}
				}
			}
		}
		sc := &esScore{dirs: pr.dirs, ref: pr.ref, best: front(all, pr.dirs)}
		pts := make([][]float64, len(sc.best))
		for i, m := range sc.best {
			pts[i] = m.Values
		}
		sc.bestH = study.Hypervolume(pts, sc.dirs, sc.ref)
		med := map[bool]float64{}
		hv := map[bool]float64{}
		for _, early := range []bool{false, true} {
			var to, hvs, pruned, total []float64
			useful := 0
			for _, r := range runs[early] {
				if x := r.gpuSecsTo(sc, 0.9); !math.IsNaN(x) {
					to = append(to, x)
				}
				hvs = append(hvs, r.hvUpTo(sc, len(r.values))/sc.bestH)
				pruned = append(pruned, float64(r.pruned)/float64(max(r.benchmarked, 1)))
				total = append(total, r.totalGPUSecs)
				useful += r.usefulPruned(sc)
			}
			t := summarize(to)
			med[early], hv[early] = t.median, summarize(hvs).median
			fmt.Fprintf(w, "| %s, %s | %v | %.0f (%.0f-%.0f) | %d/%d | %.3f | %.2f | %d | %.0f |\n", wl.name, algo, early,
				t.median, t.min, t.max, len(to), len(runs[early]), hv[early], summarize(pruned).median, useful, summarize(total).median)
		}
		fmt.Fprintf(w, "| %s, %s | **with / without** | **%.2f (%.0f %% fewer GPU-seconds)** | | **%.3f vs %.3f** | | | |\n", wl.name, algo,
			med[true]/med[false], 100*(1-med[true]/med[false]), hv[true], hv[false])
		logf("early stop: %s, %s done", wl.name, algo)
	}
	return nil
}

// usefulPruned counts the pruned trials whose full noise-free values
// would have joined the study's final front: the stops that cost it.
func (r esRun) usefulPruned(sc *esScore) int {
	var found [][]float64
	for _, v := range r.values {
		if v != nil {
			found = append(found, v)
		}
	}
	n := 0
	for _, v := range r.prunedValues {
		if v == nil {
			continue
		}
		dominated := false
		for _, f := range found {
			if study.Dominates(f, v, sc.dirs) {
				dominated = true
				break
			}
		}
		if !dominated {
			n++
		}
	}
	return n
}

// esTrace, when set (tests), sees every early-stopping decision.
var esTrace func(trial, cp int, stop bool, why string)
