package natsio

import (
	"context"
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
	rep := packingReport{MaxConcurrent: map[int]int{}, ConcurrentMixes: map[string]int{}, ByClass: map[int]int{}}
	var spans []interval
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
		q := events.TrialQueued{Envelope: events.NewEnvelope(events.TypeTrialQueued, "pack", n, time.Now()), GPUs: gpus,
			Params: events.Params{"tp_size": float64(gpus), "duration_s": secs}}
		if _, err := natsx.Publish(ctx, js, events.TrialSubject("pack", gpus, n), q); err != nil {
			tb.Fatal(err)
		}
		rep.ByClass[gpus]++
	}

	r, err := New(js, Config{
		RunnerID: "pack", Backend: "sim", GPUs: testGPUs(ps.GPUs), AckWait: 30 * time.Second, MaxDeliver: 5,
		HeartbeatEvery: time.Second, Logger: zerolog.Nop(),
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
// the sampler's in-flight cap of 8 and trial durations of 1-3 minutes scaled
// 1:200. DESIGN §7 targets >= 0.9. Run with -benchtime=1x (make bench).
func BenchmarkPacking8GPUHost(b *testing.B) {
	for _, mix := range []struct {
		name    string
		weights []float64
	}{
		{"mix=1:2:4:8=40:30:20:10", []float64{0.4, 0.3, 0.2, 0.1}},
		{"mix=1:2:4=50:30:20", []float64{0.5, 0.3, 0.2, 0}},
	} {
		b.Run(mix.name, func(b *testing.B) {
			var rep packingReport
			for i := range b.N {
				rep = runPackingStudy(b, packingStudy{
					GPUs: 8, Trials: 160, InFlight: 8, Classes: []int{1, 2, 4, 8}, Weights: mix.weights,
					MinSeconds: 60, MaxSeconds: 180, Scale: 0.005, Seed: uint64(i + 1),
				})
			}
			if rep.Overlap {
				b.Fatal("a GPU was given to two trials at once")
			}
			b.ReportMetric(rep.BusyFraction, "gpu_busy_fraction")
			b.ReportMetric(rep.Wall.Seconds(), "wall_s")
			b.Logf("busy fraction %.3f over %v; trials by class %v", rep.BusyFraction, rep.Wall.Round(time.Millisecond), rep.ByClass)
		})
	}
}
