package sampling

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// TestEveryOutcomeTeachesTheStudy tells one outcome of every kind and checks
// that each is counted and reaches the feasibility model as its own
// constraint: the rule a rejection names, the failure's class and cause, the
// SLO a completed trial missed.
func TestEveryOutcomeTeachesTheStudy(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoGPEHVI, 50)
	sp.Constraints = []study.Constraint{{Metric: "m1", Max: ptr(1.0)}}
	s, err := NewStudy(sp, Options{Seed: ptr[int64](3)})
	if err != nil {
		t.Fatal(err)
	}
	props, err := s.Propose(6)
	if err != nil || len(props) != 6 {
		t.Fatalf("Propose(6): %d, %v", len(props), err)
	}
	outs := []Outcome{
		{Kind: Completed, Metrics: map[string]float64{"m1": 0.5, "m2": 9}},
		{Kind: Completed, Metrics: map[string]float64{"m1": 2, "m2": 9.5}}, // misses the SLO m1 <= 1
		{Kind: Failed, FailureClass: events.FailOOM, FailureCause: FailureCause("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB")},
		{Kind: Failed, FailureClass: events.FailCrash},
		{Kind: Rejected, Rules: []string{"seed.gpu_count", "seed.pp_dp_cap"}},
		{Kind: Duplicate, Rules: []string{"dedup.canonical"}},
	}
	for i := range outs {
		outs[i].Trial = props[i].Trial
		if err := s.Tell(outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := Counters{Proposed: 6, Completed: 2, Failed: 2, Rejected: 2, Duplicates: 1, Infeasible: 1}
	if got := s.Counters(); got != want {
		t.Fatalf("counters: got %+v, want %+v", got, want)
	}
	s.feas.update(s.h.trials)
	wantKeys := []string{
		"fail:crash", "fail:oom:torch.OutOfMemoryError: CUDA out of memory. Tried to allocate #.# GiB",
		"rule:seed.gpu_count", "rule:seed.pp_dp_cap", "slo",
	}
	if !slices.Equal(s.feas.keys, wantKeys) {
		t.Fatalf("constraints learned:\n got %q\nwant %q", s.feas.keys, wantKeys)
	}
	// Each violating configuration is now predicted to violate its constraint.
	for i, key := range map[int]string{1: "slo", 2: wantKeys[1], 3: "fail:crash", 4: "rule:seed.gpu_count"} {
		x, _ := s.codec.encode(props[i].Params)
		if p := s.feas.models[key].prob(x); p < 0.99 {
			t.Errorf("%s: P(violation) of trial %d = %.2f, want ~1", key, props[i].Trial, p)
		}
	}
	// The duplicate taught nothing (it says nothing about its own config).
	if s.feas.fed[s.h.byNumber[props[5].Trial]] {
		t.Error("the duplicate was fed to the feasibility model")
	}
}

func TestFailureCause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, given, expected string
	}{
		{"empty", "", ""},
		{"no exception", "INFO: server started\nserver exited with status 1", ""},
		{"last exception line", "Traceback (most recent call last):\n  File \"x.py\", line 3\nValueError: first\n[2025 TP0] AssertionError: Two-batch overlap requires --moe-a2a-backend to be set\nReceived sigquit", "AssertionError: Two-batch overlap requires --moe-a2a-backend to be set"},
		{"digits folded", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 12.25 GiB", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate #.# GiB"},
		{"words with digits kept", "ValueError: FA4 backend is only supported for prefill; SM90 and 3 GPUs", "ValueError: FA4 backend is only supported for prefill; SM90 and # GPUs"},
		{"bare Exception", "Exception: Capture cuda graph failed: CUDA out of memory.", "Exception: Capture cuda graph failed: CUDA out of memory."},
		{"exec backend stderr, no exception", "benchmark command failed: exit status 3; stderr: loading weights\nerror: --enable-mixed-chunk is not supported with --enable-torch-compile (pid 4121)",
			"--enable-mixed-chunk is not supported with --enable-torch-compile (pid #)"},
		{"exec backend stderr whose level word is its only error word", "benchmark command failed: exit status 1; stderr: error: fa4 decode kernels are not available on sm_90 (pid 31337)",
			"fa4 decode kernels are not available on sm_90 (pid #)"},
		{"exec backend stderr in other words", "benchmark command failed: exit status 2; stderr: INFO: loading weights\nno kernel image for sm_90 in this build\nWARNING: shutting down",
			"no kernel image for sm_90 in this build"},
		{"exec backend stderr of quiet lines only", "benchmark command failed: exit status 2; stderr: INFO: loading weights\n[2026-01-02 TP0] WARNING: slow",
			""},
		{"exec backend one-line stderr", "benchmark command failed: exit status 1; stderr: fatal: cuda graph capture failed at bs 64", "cuda graph capture failed at bs #"},
		{"log prefixes, paths and addresses", "[2026-11-27 10:00:01 TP0] ERROR: Segmentation fault at 0x7f3a9c00 in /usr/lib/python3/dist-packages/torch/lib/libc10.so",
			"Segmentation fault at <addr> in <path>"},
		{"the same failure twice is one cause", "[2026-01-02 03:04:05 TP3] RuntimeError: NCCL error in: /opt/nccl/src/init.cc:12, unhandled cuda error, rank 7",
			"RuntimeError: NCCL error in: <path>:#, unhandled cuda error, rank #"},
	}
	for _, tc := range tests {
		if got := FailureCause(tc.given); got != tc.expected {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.expected)
		}
	}
	// The reason is read when the log has no decisive line.
	if got := FailureCause("INFO: loading\nINFO: still loading", "server was killed by signal killed"); got != "" {
		t.Errorf("reason without an error line: got %q", got)
	}
	if got := FailureCause("INFO: loading", "server ran out of memory and exited with status 1: torch.OutOfMemoryError: CUDA out of memory"); got != "torch.OutOfMemoryError: CUDA out of memory" {
		t.Errorf("reason's exception: got %q", got)
	}
}

// TestConstraintModelLearnsRules: from random labelled configurations of the
// seed space, the signature model learns the seed's gpu rule (three
// parameters) and a one-parameter crash well enough to predict unseen ones.
func TestConstraintModelLearnsRules(t *testing.T) {
	t.Parallel()
	c, err := newCodec(study.SeedSpace())
	if err != nil {
		t.Fatal(err)
	}
	k := make([]int, c.dims())
	for j, v := range c.values {
		k[j] = len(v)
	}
	rules := map[string]func(p events.Params) bool{
		"gpu":  func(p events.Params) bool { return study.GPUsNeeded(p, nil) > 8 },
		"tbo":  func(p events.Params) bool { return p["enable_two_batch_overlap"] == true },
		"pair": func(p events.Params) bool { return p["dp_size"] == 8 && p["cuda_graph_max_bs"] == 96 },
	}
	for name, rule := range rules {
		rng := rand.New(rand.NewPCG(1, 2))
		m := newConstraintModel(k)
		for range 300 {
			x := c.random(rng)
			m.add(x, rule(c.decode(x)))
		}
		wrong := 0
		for range 2000 {
			x := c.random(rng)
			if (m.prob(x) > 0.5) != rule(c.decode(x)) {
				wrong++
			}
		}
		t.Logf("%s: signature %v, %d of 2000 unseen configurations misjudged", name, m.sigs[0].params, wrong)
		if wrong > 60 {
			t.Errorf("%s: %d of 2000 misjudged", name, wrong)
		}
	}
}

// TestValueRulePredictsACauseUntilACounterExample: a failure cause seen on
// two configurations that share a value is predicted for every
// configuration with that value (a value rule), even where the signatures
// alone are unsure, until a configuration with the value completes.
func TestValueRulePredictsACauseUntilACounterExample(t *testing.T) {
	t.Parallel()
	k := []int{2, 5, 5, 5}
	m := newConstraintModel(k)
	m.rules = true
	// Passing configurations cover values 0..3 of parameter 1 and every
	// value of the others; the two failures share parameter 1 = 4 (and
	// nothing else).
	for _, x := range [][]int{{0, 0, 1, 2}, {1, 1, 2, 3}, {0, 2, 3, 4}, {1, 3, 4, 0}, {0, 0, 0, 1}} {
		m.add(x, false)
	}
	m.add([]int{0, 4, 0, 0}, true)
	m.add([]int{1, 4, 1, 1}, true)
	unseen := []int{1, 4, 3, 2}
	if p := m.prob(unseen); p < valueRuleProb {
		t.Fatalf("P(violation) of an unseen config with the shared value = %.2f, want >= %.2f", p, valueRuleProb)
	}
	if p := m.prob([]int{1, 3, 3, 2}); p > 0.5 {
		t.Fatalf("P(violation) of a config without it = %.2f", p)
	}
	// A counter-example: the value completes once, with parameter 3 at 2
	// (the failures had 0 and 1). The plain rule goes; a conditional one
	// takes its place: value 4 fails unless parameter 3 is one it passed with.
	m.add([]int{1, 4, 2, 2}, false)
	if m.ruled([]int{0, 4, 1, 2}) {
		t.Fatal("predicted a failure for the configuration that passed, up to parameter 2")
	}
	if !m.ruled([]int{0, 4, 3, 3}) {
		t.Fatal("no conditional rule for value 4 with parameter 3 at a value it never passed with")
	}
	m.add([]int{0, 4, 3, 3}, false)
	m.add([]int{1, 4, 0, 1}, false)
	if m.ruled([]int{0, 4, 4, 0}) {
		t.Fatal("a conditional rule survived counter-examples on every split")
	}
}

// TestGPFitsAndExtrapolatesOrdinally: the GP reproduces its training data
// with little uncertainty, is unsure far from it, and carries a trend over
// an ordered parameter to an unseen neighbouring value.
func TestGPFitsAndExtrapolatesOrdinally(t *testing.T) {
	t.Parallel()
	c, err := newCodec(toySpace())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	f := func(x []int) float64 { return float64(x[0]) + 0.3*float64(x[3]) } // tp_size index dominates
	var xs [][]int
	var ys []float64
	for len(xs) < 40 {
		x := c.random(rng)
		if x[0] == 3 { // tp_size 8 never seen
			continue
		}
		xs = append(xs, x)
		ys = append(ys, f(x))
	}
	g := fitGP(xs, ys, c.dist, nil, 0, 2)
	for i, x := range xs[:10] {
		mu, sd := g.predict(x, nil, nil)
		if math.Abs(mu-ys[i]) > 0.3 || sd > 0.5 {
			t.Errorf("training point %d: predicted %.2f±%.2f, observed %.2f", i, mu, sd, ys[i])
		}
	}
	// tp 8 (index 3) is predicted above tp 4 (index 2), like the trend.
	x4 := slices.Clone(xs[0])
	x4[0] = 2
	x8 := slices.Clone(xs[0])
	x8[0] = 3
	m4, _ := g.predict(x4, nil, nil)
	m8, s8 := g.predict(x8, nil, nil)
	if m8 < m4-0.5*s8 {
		t.Errorf("tp 8 predicted %.2f±%.2f, tp 4 %.2f: the ordered trend is lost", m8, s8, m4)
	}
}

func TestHVIMatchesHypervolumeDifference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	ref := []float64{1, 1}
	for range 200 {
		var pts [][]float64
		for range 1 + rng.IntN(8) {
			pts = append(pts, []float64{rng.Float64(), rng.Float64()})
		}
		front := nonDominated(pts)
		sortFront(front)
		p := []float64{rng.Float64() * 1.2, rng.Float64() * 1.2}
		d := study.MinDirections(2)
		want := study.Hypervolume(append(slices.Clone(front), p), d, ref) - study.Hypervolume(front, d, ref)
		if got := hvi(front, p, ref); math.Abs(got-want) > 1e-12 {
			t.Fatalf("hvi(%v, %v) = %g, want %g", front, p, got, want)
		}
	}
}

// TestRepeats: with spec.Sampler.Repeats, each front member is proposed again
// (RepeatOf set, same params) before anything new; its value becomes the
// mean of its runs; a member that fails on repeat drops off the front; and
// a restored study rebuilds the same state.
func TestRepeats(t *testing.T) {
	t.Parallel()
	sp := toySpec(study.AlgoRandom, 30)
	sp.Sampler.Repeats = 1
	sp.Sampler.Baseline = ptr(false)
	s, err := NewStudy(sp, Options{Seed: ptr[int64](1)})
	if err != nil {
		t.Fatal(err)
	}
	var props []Proposal
	var outs []Outcome
	tell := func(o Outcome) {
		t.Helper()
		outs = append(outs, o)
		if err := s.Tell(o); err != nil {
			t.Fatal(err)
		}
	}
	propose := func() Proposal {
		t.Helper()
		ps, err := s.Propose(1)
		if err != nil || len(ps) != 1 {
			t.Fatalf("Propose: %v %v", ps, err)
		}
		props = append(props, ps[0])
		return ps[0]
	}
	a := propose()
	tell(Outcome{Trial: a.Trial, Kind: Completed, Metrics: map[string]float64{"m1": 1, "m2": 5}})
	r := propose()
	if r.RepeatOf == nil || *r.RepeatOf != a.Trial || r.Sampler != SamplerRepeat || !reflectParams(r.Params, a.Params) {
		t.Fatalf("expected a repeat of trial %d, got %+v", a.Trial, r)
	}
	tell(Outcome{Trial: r.Trial, Kind: Completed, Metrics: map[string]float64{"m1": 3, "m2": 7}})
	ta := s.h.byNumber[a.Trial]
	if !ta.feasible || ta.y[0] != 2 || ta.y[1] != -6 {
		t.Fatalf("aggregate of trial %d: feasible %v, y %v; want the mean (2, 6)", a.Trial, ta.feasible, ta.y)
	}
	if s.FrontSize() != 1 {
		t.Fatalf("front size %d, want 1 (the repeat is not a point of its own)", s.FrontSize())
	}
	// Repeated enough: something new comes next.
	b := propose()
	if b.RepeatOf != nil {
		t.Fatalf("trial %d: a second repeat of %d with repeats = 1", b.Trial, *b.RepeatOf)
	}
	tell(Outcome{Trial: b.Trial, Kind: Completed, Metrics: map[string]float64{"m1": 0.5, "m2": 4}})
	rb := propose()
	if rb.RepeatOf == nil || *rb.RepeatOf != b.Trial {
		t.Fatalf("expected a repeat of trial %d, got %+v", b.Trial, rb)
	}
	// It does not hold up: the repeat fails, and b drops off the front.
	tell(Outcome{Trial: rb.Trial, Kind: Failed, FailureClass: events.FailOOM})
	if s.h.byNumber[b.Trial].feasible || s.FrontSize() != 1 {
		t.Fatalf("trial %d still feasible (front size %d) after a failed repeat", b.Trial, s.FrontSize())
	}
	if c := s.Counters(); c.Benchmarked() != 4 || c.Completed != 3 || c.Failed != 1 {
		t.Fatalf("counters %+v: repeats are benchmarked trials", c)
	}

	// Restore from the record.
	s2, err := NewStudy(sp, Options{Seed: ptr[int64](1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Restore(props, outs); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{a.Trial, b.Trial} {
		t1, t2 := s.h.byNumber[n], s2.h.byNumber[n]
		if t1.feasible != t2.feasible || !slices.Equal(t1.y, t2.y) || len(t2.repeats) != 1 {
			t.Fatalf("restored trial %d: feasible %v y %v repeats %d, want %v %v 1", n, t2.feasible, t2.y, len(t2.repeats), t1.feasible, t1.y)
		}
	}
}

func reflectParams(a, b events.Params) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !study.ValueEqual(v, b[k]) {
			return false
		}
	}
	return true
}

// A trial in flight taken as a pessimistic liar lowers the predicted mean
// at itself and at its near neighbours, by less the less correlated they
// are (far away it hardly moves), leaves the variance as the kriging believer does, and a lie of 0 is
// the believer.
func TestLiarsLowerTheMeanNearTrialsInFlight(t *testing.T) {
	t.Parallel()
	c, err := newCodec(toySpace())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	f := func(x []int) float64 { return float64(x[0]) + 0.5*float64(x[3]) + 0.2*float64(x[6]) }
	var xs [][]int
	var ys []float64
	for len(xs) < 40 {
		x := c.random(rng)
		xs = append(xs, x)
		ys = append(ys, f(x))
	}
	g := fitGP(xs, ys, c.dist, nil, 0, 2)
	pending := c.random(rng)
	near := slices.Clone(pending)
	near[6] = (near[6] + 1) % len(c.values[6])
	far := slices.Clone(pending)
	for j := range far {
		far[j] = (far[j] + 2) % len(c.values[j])
	}
	sc := newPredictScratch(g.n, 1)
	believe := newBelievers(g, [][]int{pending})
	lie := newLiars(g, [][]int{pending}, -1)
	zero := newLiars(g, [][]int{pending}, 0)
	drop := map[string]float64{}
	for name, x := range map[string][]int{"pending": pending, "near": near, "far": far} {
		mb, sb := believe.predict(x, sc)
		ml, sl := lie.predict(x, sc)
		mz, sz := zero.predict(x, sc)
		if mz != mb || sz != sb {
			t.Errorf("%s: a lie of 0 predicts %.4f±%.4f, the believer %.4f±%.4f", name, mz, sz, mb, sb)
		}
		if math.Abs(sl-sb) > 1e-12 {
			t.Errorf("%s: the liar's sd %.4f differs from the believer's %.4f", name, sl, sb)
		}
		drop[name] = mb - ml
	}
	_, sd0 := g.predict(pending, nil, nil)
	if drop["pending"] < 0.5*sd0 || drop["pending"] > 1.01*sd0 {
		t.Errorf("at the trial in flight the mean dropped by %.3f, want most of one posterior sd (%.3f)", drop["pending"], sd0)
	}
	// Far away the conditional covariance is small and of either sign.
	if !(drop["pending"] >= drop["near"] && drop["near"] > 0 && math.Abs(drop["far"]) < drop["near"]/2) {
		t.Errorf("mean drops: pending %.3f, near %.3f, far %.3f; want pending ≥ near > |far|·2", drop["pending"], drop["near"], drop["far"])
	}
}
