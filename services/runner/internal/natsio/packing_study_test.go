package natsio

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// packingStudy drives one runner on a simulated host the way the sampler
// does: it keeps InFlight trials outstanding (the fleet's slots), each with a
// GPU count drawn from Classes/Weights and a duration drawn from a realistic
// range (SGLang start-up plus benchmark, scaled down by Scale), and queues
// the next one when an outcome arrives.
type packingStudy struct {
	GPUs     int
	Trials   int
	InFlight int
	Classes  []int
	Weights  []float64
	// MinSeconds, MaxSeconds bound a trial's real-world duration; a trial of
	// n GPUs takes a little longer (bigger model shards, NCCL set-up).
	MinSeconds, MaxSeconds float64
	// Scale is real seconds per simulated second (0.01: 100 s become 1 s).
	Scale float64
	Seed  uint64
	// Backfill and ReserveAfter are the runner's settings (its defaults
	// when zero).
	Backfill     BackfillPolicy
	ReserveAfter time.Duration
}

// packingReport is what a packing study measured.
type packingReport struct {
	Wall            time.Duration
	BusyGPUSeconds  float64
	BusyFraction    float64        // busy GPU-seconds / (GPUs × wall)
	Overlap         bool           // a GPU was given to two trials at once
	MaxConcurrent   map[int]int    // per class, the most trials of it running at once
	ConcurrentMixes map[string]int // sets of classes seen running together, e.g. "1+2+4"
	ByClass         map[int]int
	// MaxWait is, per class, the longest a trial waited from being queued
	// to starting, in simulated seconds (real seconds / Scale).
	MaxWait map[int]float64
	// Idle is the GPU-seconds (real) no trial held, by what was queued at
	// the time: "8 waiting" (an 8-GPU trial, so the host drains or waits
	// for it), "queued" (other trials only: reservations for smaller
	// classes and the runner's claim latency) and "none" (the driver had
	// nothing queued: its in-flight cap and the study's tail).
	Idle map[string]float64
}

type queuedTrial struct {
	at   time.Time
	gpus int
}

// idleByState splits the idle GPU-seconds of a study (packingReport.Idle).
func idleByState(gpus int, queued []queuedTrial, spans []interval) map[string]float64 {
	type change struct {
		at                 time.Time
		busy, queued, big8 int
	}
	var cs []change
	is8 := func(n int) int {
		if n == 8 {
			return 1
		}
		return 0
	}
	for _, q := range queued {
		cs = append(cs, change{q.at, 0, 1, is8(q.gpus)})
	}
	for _, sp := range spans {
		n := len(sp.gpus)
		cs = append(cs, change{sp.start, n, -1, -is8(n)}, change{sp.end, -n, 0, 0})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].at.Before(cs[j].at) })
	idle := map[string]float64{"8 waiting": 0, "queued": 0, "none": 0}
	busy, q, big := 0, 0, 0
	for i, c := range cs {
		if i > 0 {
			k := "none"
			switch {
			case big > 0:
				k = "8 waiting"
			case q > 0:
				k = "queued"
			}
			idle[k] += float64(gpus-busy) * c.at.Sub(cs[i-1].at).Seconds()
		}
		busy += c.busy
		q += c.queued
		big += c.big8
	}
	return idle
}

type interval struct {
	gpus       []int
	start, end time.Time
}

func runPackingStudy(tb testing.TB, ps packingStudy) packingReport {
	tb.Helper()
	srv := natstest.RunServer(tb)
	nc, js := natstest.Connect(tb, srv)
	ctx := context.Background()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		tb.Fatal(err)
	}

	var mu sync.Mutex
	inUse := map[int]bool{}
	running := map[int]int{} // class -> trials running
	rep := packingReport{MaxConcurrent: map[int]int{}, ConcurrentMixes: map[string]int{}, ByClass: map[int]int{}, MaxWait: map[int]float64{}}
	queuedAt := map[int]time.Time{} // trial -> when it was queued
	var spans []interval
	var pubs []queuedTrial
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		start := time.Now()
		mu.Lock()
		for _, g := range gpus {
			if inUse[g] {
				rep.Overlap = true
			}
			inUse[g] = true
		}
		running[len(gpus)]++
		if at, ok := queuedAt[q.Trial]; ok {
			rep.MaxWait[len(gpus)] = max(rep.MaxWait[len(gpus)], start.Sub(at).Seconds()/ps.Scale)
		}
		rep.MaxConcurrent[len(gpus)] = max(rep.MaxConcurrent[len(gpus)], running[len(gpus)])
		rep.ConcurrentMixes[mixKey(running)]++
		mu.Unlock()
		d := time.Duration(q.Params["duration_s"].(float64) * ps.Scale * float64(time.Second))
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		mu.Lock()
		for _, g := range gpus {
			delete(inUse, g)
		}
		running[len(gpus)]--
		spans = append(spans, interval{gpus: gpus, start: start, end: time.Now()})
		mu.Unlock()
		if ctx.Err() != nil {
			return events.TrialResult{}, ctx.Err()
		}
		return completeResult(q, gpus), nil
	}}

	// The sampler's side: an outcome frees an in-flight slot.
	outcomes := make(chan struct{}, ps.Trials)
	sub, err := nc.Subscribe(events.OutcomesOfStudy("pack"), func(*nats.Msg) { outcomes <- struct{}{} })
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	rng := rand.New(rand.NewPCG(ps.Seed, 7))
	publish := func(n int) {
		gpus := pick(rng, ps.Classes, ps.Weights)
		secs := ps.MinSeconds + rng.Float64()*(ps.MaxSeconds-ps.MinSeconds)
		secs *= 1 + 0.05*float64(gpus-1) // larger trials load and warm up a little longer
		mu.Lock()
		queuedAt[n] = time.Now()
		mu.Unlock()
		q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, "pack", n, time.Now()), GPUs: gpus,
			Params: events.Params{"tp_size": float64(gpus), "duration_s": secs}}
		if _, err := natsx.Publish(ctx, js, events.TrialSubject("pack", gpus, n), q); err != nil {
			tb.Fatal(err)
		}
		rep.ByClass[gpus]++
		mu.Lock()
		pubs = append(pubs, queuedTrial{time.Now(), gpus})
		mu.Unlock()
	}

	r, err := New(js, Config{
		RunnerID: "pack", Backend: "sim", GPUs: testGPUs(ps.GPUs), AckWait: 30 * time.Second, MaxDeliver: 5,
		HeartbeatEvery: time.Second, Logger: zerolog.Nop(),
		Backfill: ps.Backfill, ReserveAfter: ps.ReserveAfter,
	}, exec)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.EnsureConsumers(ctx); err != nil {
		tb.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	}()

	start := time.Now()
	next := 0
	for ; next < min(ps.InFlight, ps.Trials); next++ {
		publish(next)
	}
	timeout := time.After(10 * time.Minute)
	for got := 0; got < ps.Trials; got++ {
		select {
		case <-outcomes:
		case <-timeout:
			tb.Fatalf("only %d of %d outcomes", got, ps.Trials)
		}
		if next < ps.Trials {
			publish(next)
			next++
		}
	}
	rep.Wall = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range spans {
		rep.BusyGPUSeconds += float64(len(s.gpus)) * s.end.Sub(s.start).Seconds()
	}
	rep.BusyFraction = rep.BusyGPUSeconds / (float64(ps.GPUs) * rep.Wall.Seconds())
	rep.Idle = idleByState(ps.GPUs, pubs, spans)
	return rep
}

func pick(rng *rand.Rand, classes []int, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return classes[i]
		}
		x -= w
	}
	return classes[len(classes)-1]
}

// mixKey names the classes running at once, e.g. "1+2+4".
func mixKey(running map[int]int) string {
	var cs []int
	for c, n := range running {
		if n > 0 {
			cs = append(cs, c)
		}
	}
	sort.Ints(cs)
	key := ""
	for i, c := range cs {
		if i > 0 {
			key += "+"
		}
		key += strconv.Itoa(c)
	}
	return key
}

// TestRunner_packs_1_2_4_8_GPU_trials_on_a_simulated_8_GPU_host runs a short
// study of 1-, 2-, 4- and 8-GPU trials on one 8-GPU runner: every trial gets
// a result, no GPU is ever given to two trials, trials of different sizes
// run side by side, and the GPU-busy fraction is reported (not asserted: it
// is a benchmark figure, BenchmarkPacking8GPUHost).
func TestRunner_packs_1_2_4_8_GPU_trials_on_a_simulated_8_GPU_host(t *testing.T) {
	if testing.Short() {
		t.Skip("a short study in real time")
	}
	rep := runPackingStudy(t, packingStudy{
		GPUs: 8, Trials: 40, InFlight: 8, Classes: []int{1, 2, 4, 8}, Weights: []float64{0.4, 0.3, 0.2, 0.1},
		MinSeconds: 60, MaxSeconds: 180, Scale: 0.002, Seed: 1,
	})
	t.Logf("wall %v, busy fraction %.3f, by class %v, max concurrent %v, mixes %v",
		rep.Wall.Round(time.Millisecond), rep.BusyFraction, rep.ByClass, rep.MaxConcurrent, rep.ConcurrentMixes)
	if rep.Overlap {
		t.Fatal("a GPU was given to two trials at once")
	}
	for _, c := range []int{1, 2, 4, 8} {
		if rep.ByClass[c] == 0 {
			t.Fatalf("no %d-GPU trial in the study (seeded): %v", c, rep.ByClass)
		}
	}
	mixed := false
	for k := range rep.ConcurrentMixes {
		mixed = mixed || len(k) > 1 // two or more classes at once
	}
	if !mixed {
		t.Fatalf("trials of different sizes never ran side by side: %v", rep.ConcurrentMixes)
	}
}

// BenchmarkPacking8GPUHost measures the GPU-busy fraction (busy GPU-seconds
// / (8 × wall time)) of a 160-trial study on one simulated 8-GPU runner, with
// the sampler's in-flight cap of 8 (the host's slots) and trial durations of
// 1-3 minutes scaled 1:200, and the longest an 8-GPU trial waited to start.
// policy=new is the runner's default (a class reserves GPUs only after
// waiting a mean trial duration; cost-based backfilling), policy=old the
// earlier rule (reserve at once; EASY backfilling on class means),
// policy=aging the new reservation delay with the old backfilling;
// inflight=16 shows what a deeper queue than the host's slots would add.
// DESIGN §7 targets >= 0.9. Run with -benchtime=1x (make bench).
func BenchmarkPacking8GPUHost(b *testing.B) {
	type mix struct {
		name    string
		weights []float64
	}
	mix1248 := mix{"1:2:4:8=40:30:20:10", []float64{0.4, 0.3, 0.2, 0.1}}
	mix124 := mix{"1:2:4=50:30:20", []float64{0.5, 0.3, 0.2, 0}}
	type policy struct {
		name         string
		backfill     BackfillPolicy
		reserveAfter time.Duration
	}
	newP := policy{"new", BackfillCost, 0}
	oldP := policy{"old", BackfillMean, -1}
	agingP := policy{"aging", BackfillMean, 0}
	for _, c := range []struct {
		mix      mix
		policy   policy
		inFlight int
	}{
		{mix1248, newP, 8}, {mix1248, oldP, 8}, {mix1248, agingP, 8},
		{mix124, newP, 8}, {mix124, oldP, 8},
		{mix1248, newP, 16}, {mix1248, oldP, 16},
	} {
		b.Run(fmt.Sprintf("mix=%s/policy=%s/inflight=%d", c.mix.name, c.policy.name, c.inFlight), func(b *testing.B) {
			var rep packingReport
			for i := range b.N {
				rep = runPackingStudy(b, packingStudy{
					GPUs: 8, Trials: 160, InFlight: c.inFlight, Classes: []int{1, 2, 4, 8}, Weights: c.mix.weights,
					MinSeconds: 60, MaxSeconds: 180, Scale: 0.005, Seed: uint64(i + 1),
					Backfill: c.policy.backfill, ReserveAfter: c.policy.reserveAfter,
				})
			}
			if rep.Overlap {
				b.Fatal("a GPU was given to two trials at once")
			}
			b.ReportMetric(rep.BusyFraction, "gpu_busy_fraction")
			b.ReportMetric(rep.Wall.Seconds(), "wall_s")
			b.ReportMetric(rep.MaxWait[8], "max_wait_g8_s")
			b.Logf("busy fraction %.3f over %v; trials by class %v; longest wait by class (simulated s) %v; idle GPU-s %v",
				rep.BusyFraction, rep.Wall.Round(time.Millisecond), rep.ByClass, rep.MaxWait, rep.Idle)
		})
	}
}

// TestRunner_large_trial_starts_within_a_bound_amid_small_ones queues a
// 4-GPU trial on a 4-GPU runner behind a long stream of 1-GPU trials: with
// the default reservation delay (a mean trial duration) and backfilling
// limit, it must start within ReserveAfter + MaxBackfillWait + the longest
// trial (about 0.35 s here), long before the stream would have drained.
func TestRunner_large_trial_starts_within_a_bound_amid_small_ones(t *testing.T) {
	if testing.Short() {
		t.Skip("a short study in real time")
	}
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	const trialTime = 100 * time.Millisecond
	var mu sync.Mutex
	var bigStart time.Time
	smallAfterBig := 0
	exec := &fakeExec{RunFn: func(ctx context.Context, q events.TrialQueued, gpus []int, _ func(string, string)) (events.TrialResult, error) {
		mu.Lock()
		if len(gpus) == 4 {
			bigStart = time.Now()
		} else if !bigStart.IsZero() {
			smallAfterBig++
		}
		mu.Unlock()
		time.Sleep(trialTime)
		return completeResult(q, gpus), nil
	}}
	startRunner(t, js, "r1", 4, 5*time.Second, exec)
	const small = 120 // 30 rounds of 4 on 4 GPUs: about 3 s
	for i := range small {
		queue(t, js, "s1", i, 1)
	}
	waitFor(t, 10*time.Second, "a few small trials to finish", func() bool { return len(outcomes(t, js, "s1")) >= 8 })
	queued := time.Now()
	queue(t, js, "s1", small, 4)
	waitFor(t, 20*time.Second, "all results", func() bool { return len(outcomes(t, js, "s1")) == small+1 })
	mu.Lock()
	defer mu.Unlock()
	waited := bigStart.Sub(queued)
	t.Logf("the 4-GPU trial waited %v; %d small trials ran after it", waited, smallAfterBig)
	if waited > 1500*time.Millisecond {
		t.Fatalf("the 4-GPU trial waited %v behind 1-GPU trials (bound about 0.35 s)", waited)
	}
	if smallAfterBig == 0 {
		t.Fatal("the 4-GPU trial ran only after every small trial: it was starved")
	}
}
