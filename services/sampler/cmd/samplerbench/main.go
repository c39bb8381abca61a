// Command samplerbench measures the sampler's sample efficiency offline
// (`make bench-sampler`): whole studies of each sampler variant on the
// simulator's noise-free performance model, judged by the validator's
// rules, scored by hypervolume as a fraction of the best front known.
//
// Usage:
//
//	samplerbench [-seeds 10] [-budgets 50,100] [-variants motpe,nsga2-seed,random]
//	             [-quick] [-gpu H100] [-model llama-3.1-8b] [-spec study.yaml]
//	             [-reference FILE] [-search-random 200000] [-search-pairs]
//	             [-results results.json] [-json out.json]
//
// The best known front comes from -reference (a JSON cache keyed by the
// problem's fingerprint), else from a long search (SearchFront: -search-random
// uniformly random configurations, then exhaustive single- and, with
// -search-pairs, two-parameter neighbourhoods of the front until it stops
// changing), and is widened by every point the benchmarked studies find.
// The hypervolume's reference point is fixed: the reporter's rule
// (study.ReferencePoint) applied to the baseline trial, SGLang's defaults,
// evaluated on the same model.
//
// With -results, it also reads an sgtune results file (e.g. from
// `sgtune up --sim`) and prints the study's hypervolume after each
// benchmarked trial on the same scale.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/benchmark"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "samplerbench:", err)
		os.Exit(1)
	}
}

// variants are the sampler configurations the benchmark knows.
var variants = map[string]benchmark.Variant{
	"motpe":      {Name: "motpe", Algorithm: sampling.AlgoMOTPE},
	"motpe-b4":   {Name: "motpe-b4", Algorithm: sampling.AlgoMOTPE, Batch: 4},
	"motpe-b16":  {Name: "motpe-b16", Algorithm: sampling.AlgoMOTPE, Batch: 16},
	"random-b16": {Name: "random-b16", Algorithm: sampling.AlgoRandom, Batch: 16},
	"nsga2-seed": {Name: "nsga2-seed", Algorithm: sampling.AlgoNSGA2, IgnoreInvalid: true},
	"nsga2":      {Name: "nsga2", Algorithm: sampling.AlgoNSGA2},
	"random":     {Name: "random", Algorithm: sampling.AlgoRandom},
	"motpe-tpe":  {Name: "motpe-tpe", Algorithm: sampling.AlgoMOTPE, Acquisition: sampling.AcqTPE},
}

type options struct {
	seeds        int
	budgets      []int
	variants     []string
	gpu, model   string
	specFile     string
	reference    string
	searchRandom int
	searchPairs  bool
	results      string
	jsonOut      string
	parallel     int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("samplerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var budgets, vars string
	quick := fs.Bool("quick", false, "3 seeds, budget 50 only (a smoke run)")
	fs.IntVar(&o.seeds, "seeds", 10, "seeds per sampler and budget")
	fs.StringVar(&budgets, "budgets", "50,100", "budgets of benchmarked trials, comma-separated")
	fs.StringVar(&vars, "variants", "motpe,nsga2-seed,random", "sampler variants, comma-separated (known: "+strings.Join(variantNames(), ", ")+")")
	fs.StringVar(&o.gpu, "gpu", "H100", "GPU preset of the simulator")
	fs.StringVar(&o.model, "model", "llama-3.1-8b", "model preset of the simulator (when model.path is not recognised)")
	fs.StringVar(&o.specFile, "spec", "", "study spec (default: the built-in default study)")
	fs.StringVar(&o.reference, "reference", "", "best-known-front cache (JSON); searched and written when missing or stale")
	fs.IntVar(&o.searchRandom, "search-random", 200000, "random configurations of the reference search")
	fs.BoolVar(&o.searchPairs, "search-pairs", true, "also search two-parameter neighbourhoods of the front")
	fs.StringVar(&o.results, "results", "", "an sgtune results file whose hypervolume curve to score")
	fs.StringVar(&o.jsonOut, "json", "", "write every run's hypervolume fractions here")
	fs.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "studies run in parallel")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		o.seeds = min(o.seeds, 3)
		budgets = "50"
	}
	for _, b := range strings.Split(budgets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-budgets: bad budget %q", b)
		}
		o.budgets = append(o.budgets, n)
	}
	for _, v := range strings.Split(vars, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if _, ok := variants[v]; !ok {
			return o, fmt.Errorf("-variants: unknown variant %q (known: %s)", v, strings.Join(variantNames(), ", "))
		}
		o.variants = append(o.variants, v)
	}
	if o.seeds < 1 || o.parallel < 1 {
		return o, errors.New("-seeds and -parallel must be at least 1")
	}
	return o, nil
}

func variantNames() []string {
	var out []string
	for k := range variants {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	spec := study.Default()
	if o.specFile != "" {
		if spec, err = study.LoadFile(o.specFile); err != nil {
			return err
		}
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	se, err := newSimEvaluator(spec, o.gpu, o.model)
	if err != nil {
		return err
	}
	eval := benchmark.NewCache(se)
	dirs := spec.Directions()

	// The fixed reference point: the reporter's rule on the baseline.
	basep, err := sampling.Baseline(spec.Space)
	if err != nil {
		return err
	}
	bv := eval.Evaluate(basep)
	baseVals, ok := spec.ObjectiveValues(bv.Metrics)
	if bv.Kind != sampling.Completed || !ok {
		return fmt.Errorf("the baseline (SGLang's defaults) does not complete on the model: %+v", bv)
	}
	ref := study.ReferencePoint(baseVals, dirs)
	fmt.Fprintf(stderr, "baseline %v -> reference point %v (%s)\n", baseVals, ref, study.ReferenceRule)

	fp := fingerprint(spec, o, baseVals)
	best, cache, err := loadReference(o.reference, fp, spec, eval)
	if err != nil {
		fmt.Fprintln(stderr, "reference cache not used:", err)
	}
	searched := best == nil
	if best == nil {
		t0 := time.Now()
		var stats benchmark.SearchStats
		best, stats = benchmark.SearchFront(spec, se, benchmark.SearchOptions{
			Random: o.searchRandom, Seed: 1, Pairs: o.searchPairs, Workers: o.parallel,
		})
		cache = referenceFile{Fingerprint: fp, GPU: o.gpu, Model: o.model, Baseline: baseVals, ReferencePoint: ref,
			Rule: study.ReferenceRule, SearchRandom: o.searchRandom, SearchPairs: o.searchPairs, Stats: stats}
		fmt.Fprintf(stderr, "reference search: %d configurations (%d rejected, %d failed, %d feasible), %d rounds, %d on the front, %s\n",
			stats.Proposed, stats.Rejected, stats.Failed, stats.Feasible, stats.Rounds, len(best), time.Since(t0).Round(time.Second))
	}
	refHV := hvOf(best, dirs, ref)
	fmt.Fprintf(stderr, "reference front: %d members, hypervolume %.6g\n", len(best), refHV)

	// The studies.
	runs, err := runAll(spec, o, eval, stderr)
	if err != nil {
		return err
	}
	// Widen the best known front with everything the studies found.
	union := slices.Clone(best)
	for _, r := range runs {
		for i, p := range r.Points {
			if p != nil {
				union = append(union, benchmark.Member{Params: r.Configs[i], Values: p})
			}
		}
	}
	union = benchmark.Front(union, dirs)
	bestHV := hvOf(union, dirs, ref)
	if bestHV > refHV*(1+1e-12) {
		fmt.Fprintf(stderr, "the studies improved the best known front: %.6g -> %.6g (+%.3f%%)\n", refHV, bestHV, 100*(bestHV/refHV-1))
	}
	cache.Front = union
	cache.Hypervolume = bestHV
	if o.reference != "" && (searched || bestHV > refHV*(1+1e-12)) {
		if err := writeJSON(o.reference, cache); err != nil {
			return err
		}
	}

	report(stdout, spec, o, runs, ref, bestHV, union, eval.Evaluations())
	if o.jsonOut != "" {
		if err := writeRuns(o.jsonOut, runs, dirs, ref, bestHV); err != nil {
			return err
		}
	}
	if o.results != "" {
		if err := scoreResults(stdout, o.results, spec, ref, bestHV); err != nil {
			return err
		}
	}
	return nil
}

func hvOf(ms []benchmark.Member, dirs []study.Direction, ref []float64) float64 {
	pts := make([][]float64, len(ms))
	for i, m := range ms {
		pts[i] = m.Values
	}
	return study.Hypervolume(pts, dirs, ref)
}

// runAll runs every (variant, budget, seed) study, o.parallel at a time.
func runAll(spec study.Spec, o options, eval benchmark.Evaluator, stderr io.Writer) ([]benchmark.Run, error) {
	type job struct {
		v      benchmark.Variant
		budget int
		seed   int64
	}
	var jobs []job
	for _, name := range o.variants {
		for _, b := range o.budgets {
			for s := range o.seeds {
				jobs = append(jobs, job{variants[name], b, int64(s + 1)})
			}
		}
	}
	runs := make([]benchmark.Run, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.parallel)
	t0 := time.Now()
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i], errs[i] = benchmark.RunStudy(spec, j.v, j.seed, j.budget, eval)
		})
	}
	wg.Wait()
	fmt.Fprintf(stderr, "%d studies in %s\n", len(jobs), time.Since(t0).Round(time.Millisecond))
	return runs, errors.Join(errs...)
}

// report prints the Markdown table.
func report(w io.Writer, spec study.Spec, o options, runs []benchmark.Run, ref []float64, bestHV float64, best []benchmark.Member, evals int) {
	dirs := spec.Directions()
	fmt.Fprintf(w, "Problem: default study (%d parameters, rule sets %v), %s, %s, workload %d prompts %d/%d tokens at concurrency %d; noise-free model.\n",
		len(spec.Space), spec.Rules.Sets, o.gpu, o.model, spec.Workload.NumPrompts, spec.Workload.RandomInputLen, spec.Workload.RandomOutputLen, spec.Workload.MaxConcurrency)
	fmt.Fprintf(w, "Reference point (fixed): %s = %.6g, %s = %.6g. Best known front: %d members, hypervolume %.6g. Distinct configurations evaluated: %d.\n\n",
		spec.Objectives[0].Name, ref[0], spec.Objectives[1].Name, ref[1], len(best), bestHV, evals)
	fmt.Fprintln(w, "| sampler | budget | median | min | max | rejected/study | failed/study | propose p50 | propose max |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range o.variants {
		for _, b := range o.budgets {
			var fr, rej, fail []float64
			var times []time.Duration
			for _, r := range runs {
				if r.Variant != name || r.Budget != b {
					continue
				}
				fr = append(fr, benchmark.HypervolumeAt(r, b, dirs, ref)/bestHV)
				rej = append(rej, float64(r.Counters.Rejected))
				fail = append(fail, float64(r.Counters.Failed))
				times = append(times, r.ProposeTimes...)
			}
			s := benchmark.Summarize(fr)
			fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | %.3f | %.0f | %.0f | %s | %s |\n", name, b, s.Median, s.Min, s.Max,
				benchmark.Summarize(rej).Median, benchmark.Summarize(fail).Median,
				benchmark.DurationQuantile(times, 0.5).Round(time.Microsecond), benchmark.DurationQuantile(times, 1).Round(time.Microsecond))
		}
	}
	// Median curve of each variant at the largest budget.
	bmax := slices.Max(o.budgets)
	fmt.Fprintf(w, "\nMedian fraction of the best known hypervolume after n benchmarked trials (budget %d):\n\n", bmax)
	marks := []int{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 150, 200}
	fmt.Fprint(w, "| sampler |")
	for _, m := range marks {
		if m <= bmax {
			fmt.Fprintf(w, " %d |", m)
		}
	}
	fmt.Fprint(w, "\n|---|")
	for _, m := range marks {
		if m <= bmax {
			fmt.Fprint(w, "---:|")
		}
	}
	fmt.Fprintln(w)
	for _, name := range o.variants {
		fmt.Fprintf(w, "| %s |", name)
		for _, m := range marks {
			if m > bmax {
				continue
			}
			var fr []float64
			for _, r := range runs {
				if r.Variant == name && r.Budget == bmax {
					fr = append(fr, benchmark.HypervolumeAt(r, m, dirs, ref)/bestHV)
				}
			}
			fmt.Fprintf(w, " %.3f |", benchmark.Summarize(fr).Median)
		}
		fmt.Fprintln(w)
	}
}

func writeRuns(path string, runs []benchmark.Run, dirs []study.Direction, ref []float64, bestHV float64) error {
	type out struct {
		Variant  string            `json:"variant"`
		Seed     int64             `json:"seed"`
		Budget   int               `json:"budget"`
		Fraction []float64         `json:"fraction_after_each_trial"`
		Counters sampling.Counters `json:"counters"`
	}
	var all []out
	for _, r := range runs {
		o := out{Variant: r.Variant, Seed: r.Seed, Budget: r.Budget, Counters: r.Counters}
		for n := 1; n <= len(r.Points); n++ {
			o.Fraction = append(o.Fraction, benchmark.HypervolumeAt(r, n, dirs, ref)/bestHV)
		}
		all = append(all, o)
	}
	return writeJSON(path, all)
}

// scoreResults prints the hypervolume curve of an sgtune results file on
// the benchmark's scale (fixed reference point, best known front).
func scoreResults(w io.Writer, path string, spec study.Spec, ref []float64, bestHV float64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc struct {
		ReferencePoint map[string]float64 `json:"reference_point"`
		Trials         []struct {
			TrialNumber int                `json:"trial_number"`
			State       string             `json:"state"`
			Feasible    bool               `json:"feasible"`
			Objectives  map[string]float64 `json:"objectives"`
			Parameters  events.Params      `json:"parameters"`
		} `json:"trials"`
		History []struct {
			TrialNumber int     `json:"trial_number"`
			Benchmarked int     `json:"benchmarked"`
			Hypervolume float64 `json:"hypervolume"`
		} `json:"hypervolume_history"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dirs := spec.Directions()
	var pts [][]float64
	fmt.Fprintf(w, "\nStudy %s: reporter's reference point %v; benchmark's %v.\n\n", path, doc.ReferencePoint, ref)
	fmt.Fprintln(w, "| benchmarked | trial | reporter hypervolume | fraction of best known (benchmark's reference) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	hist := map[int]float64{}
	for _, h := range doc.History {
		hist[h.TrialNumber] = h.Hypervolume
	}
	n := 0
	for _, t := range doc.Trials {
		if t.State == "REJECTED" {
			continue
		}
		n++
		if t.Feasible && t.Objectives != nil {
			p := make([]float64, len(spec.Objectives))
			for i, o := range spec.Objectives {
				p[i] = t.Objectives[o.Name]
			}
			pts = append(pts, p)
		}
		if n <= 10 || n%5 == 0 || n == len(doc.History) {
			fmt.Fprintf(w, "| %d | %d | %.6g | %.3f |\n", n, t.TrialNumber, hist[t.TrialNumber], study.Hypervolume(pts, dirs, ref)/bestHV)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
