// Command samplerbench measures the sampler's sample efficiency (`make
// bench-sampler`): whole studies of each sampler setting on several
// response surfaces, 10 seeds each, sequential (one trial in flight) and
// parallel (as many as the fleet's slots: one runner, 8 GPUs), scored by
// the hypervolume of what was found (each configuration at its noise-free
// values) as a fraction of the best known front, and by the share of
// launches after the 30th that failed for a cause already seen.
//
// Usage:
//
//	samplerbench [-mode services|offline] [-surfaces a,b] [-variants gp-ehvi-par,...]
//	             [-seeds 10] [-budget 100] [-workers 2] [-warm] [-quick] [-json FILE]
//	samplerbench eval -surface NAME [-time-scale S]
//	samplerbench -early-stop [-seeds 10] [-budget 100]
//
// -mode services (the default) runs every study through the real services
// on an embedded NATS server, in process: sampler.Run, validator.Run, one
// runner.Run with the exec backend on a simulated 8-GPU host, and
// reporter.Run; the runner's benchmark command is this program's eval
// subcommand, which measures the trial's configuration on the surface,
// sleeps its simulated duration (scaled) and prints the exec backend's JSON
// or fails with the surface's error line. -mode offline drives the same
// sampler domain in process (sampler.InProcess) against the validator's
// rules and a simulated runner: no NATS, simulated time, for quick
// iteration.
//
// Surfaces (surface.go): the simulator's model for two model/GPU pairs and
// two synthetic surfaces; sim-a100-qwen30b-moe and synth-ridge are held out
// (written before the sampler was tuned, never tuned on). The best known
// front of each is cached in testdata/reference-<surface>.json and searched
// again (random sample plus neighbourhoods) when the surface changes.
// -warm also measures warm starts: trials to 90 % of the front on a target
// surface with and without a warm start from a finished study of a related
// source surface.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "eval" {
		err = evalMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	} else {
		err = run(os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		var ee exitCode
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintln(os.Stderr, "samplerbench:", err)
		os.Exit(2)
	}
}

// exitCode ends the program with a status and no message (eval's failure
// exit, its line already on stderr).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type options struct {
	mode         string
	surfaces     []Surface
	variants     []variant
	seeds        int
	firstSeed    int
	budget       int
	workers      int
	refDir       string
	searchRandom int
	searchPairs  bool
	warm         bool
	warmOnly     bool
	single       bool
	jsonOut      string
	timeScale    float64
	earlyStop    bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("samplerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var surf, vars string
	quick := fs.Bool("quick", false, "3 seeds, budget 50, the default variants in parallel only (a smoke run)")
	fs.StringVar(&o.mode, "mode", "services", "services (the real services on an embedded NATS) or offline (the sampler's domain, simulated time)")
	fs.StringVar(&surf, "surfaces", "", "surfaces, comma-separated (default all; known: "+strings.Join(surfaceNames(allSurfaces()), ", ")+")")
	fs.StringVar(&vars, "variants", "gp-ehvi-seq,gp-ehvi-par,motpe-seq,motpe-par,scalarized-tpe-seq,scalarized-tpe-par,nsga2-par,random-par",
		"sampler settings, comma-separated (known: "+strings.Join(variantNames(), ", ")+")")
	fs.IntVar(&o.seeds, "seeds", 10, "seeds per surface and setting (1..seeds)")
	fs.IntVar(&o.firstSeed, "first-seed", 1, "the first seed")
	fs.IntVar(&o.budget, "budget", 100, "benchmarked trials per study (the table reports @50 and @budget)")
	fs.IntVar(&o.workers, "workers", max(1, runtime.GOMAXPROCS(0)), "studies run at once (services: each on its own NATS server and services)")
	fs.StringVar(&o.refDir, "refdir", "e2e/samplerbench/testdata", "directory of the best-known-front caches")
	fs.IntVar(&o.searchRandom, "search-random", 200000, "random configurations of a reference search")
	fs.BoolVar(&o.searchPairs, "search-pairs", true, "also search two-parameter neighbourhoods of the front")
	fs.BoolVar(&o.warm, "warm", false, "also run the warm-start benchmark")
	fs.BoolVar(&o.single, "single", false, "also run the single-objective benchmark (goptuna's tpe and cmaes beside gp-ehvi)")
	fs.BoolVar(&o.warmOnly, "warm-only", false, "run the warm-start benchmark only")
	fs.StringVar(&o.jsonOut, "json", "", "write every study's per-trial record here")
	fs.Float64Var(&o.timeScale, "time-scale", 1.0/400, "services: real seconds per simulated second of a trial")
	fs.BoolVar(&o.earlyStop, "early-stop", false, "run the early-stopping benchmark only (sampler.early_stop on and off, same seeds; offline)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		o.seeds, o.budget = min(o.seeds, 3), 50
		if !flagSet(fs, "variants") {
			vars = "gp-ehvi-par"
		}
	}
	if o.mode != "services" && o.mode != "offline" {
		return o, fmt.Errorf("-mode: want services or offline, got %q", o.mode)
	}
	if surf == "" {
		o.surfaces = surfaces()
	}
	for _, n := range splitList(surf) {
		s, ok := surfaceByName(n)
		if !ok {
			return o, fmt.Errorf("-surfaces: unknown surface %q (known: %s)", n, strings.Join(surfaceNames(allSurfaces()), ", "))
		}
		o.surfaces = append(o.surfaces, s)
	}
	for _, n := range splitList(vars) {
		v, ok := variantByName(n)
		if !ok {
			return o, fmt.Errorf("-variants: unknown setting %q (known: %s)", n, strings.Join(variantNames(), ", "))
		}
		o.variants = append(o.variants, v)
	}
	if o.seeds < 1 || o.budget < 2 || o.workers < 1 {
		return o, errors.New("-seeds and -workers must be at least 1, -budget at least 2")
	}
	o.warm = o.warm || o.warmOnly
	return o, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func variantNames() []string {
	var out []string
	for _, v := range variants() {
		out = append(out, v.name)
	}
	slices.Sort(out)
	return out
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if o.earlyStop {
		return earlyStopBench(o, stdout, logf)
	}
	t0 := time.Now()
	var all []runResult
	problems := map[string]*problem{}
	load := func(s Surface) (*problem, error) {
		if pr, ok := problems[s.Name()]; ok {
			return pr, nil
		}
		pr, err := loadProblem(s, o.refDir, o.searchRandom, o.searchPairs, o.workers, logf)
		if err != nil {
			return nil, err
		}
		problems[s.Name()] = pr
		return pr, nil
	}
	var order []*problem
	if !o.warmOnly {
		for _, s := range o.surfaces {
			pr, err := load(s)
			if err != nil {
				return err
			}
			order = append(order, pr)
		}
		var jobs []studyJob
		for _, pr := range order {
			for _, v := range o.variants {
				if !pr.accepts(v) {
					continue
				}
				for seed := range int64(o.seeds) {
					jobs = append(jobs, studyJob{pr: pr, v: v, seed: seed + int64(o.firstSeed), budget: o.budget})
				}
			}
		}
		if all, err = runJobs(o, jobs, logf); err != nil {
			return err
		}
		for _, pr := range order {
			var found []Member
			for _, r := range all {
				if r.surface != pr.surf.Name() {
					continue
				}
				for _, t := range r.trials {
					if t.values != nil {
						found = append(found, Member{Params: t.params, Values: t.values})
					}
				}
			}
			if err := pr.widen(found); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "Mode %s, %d seeds, budget %d, %d studies, %s wall.\n\n", o.mode, o.seeds, o.budget, len(all), time.Since(t0).Round(time.Second))
		report(stdout, o, order, all)
	}
	if o.single {
		so := o
		so.variants = nil
		for _, n := range []string{"tpe-seq", "tpe-par", "cmaes-seq", "cmaes-par", "gp-ehvi-seq", "gp-ehvi-par", "random-par"} {
			v, _ := variantByName(n)
			so.variants = append(so.variants, v)
		}
		var sprobs []*problem
		var jobs []studyJob
		for _, s := range singleSurfaces() {
			pr, err := load(s)
			if err != nil {
				return err
			}
			sprobs = append(sprobs, pr)
			for _, v := range so.variants {
				for seed := range int64(o.seeds) {
					jobs = append(jobs, studyJob{pr: pr, v: v, seed: seed + int64(o.firstSeed), budget: o.budget})
				}
			}
		}
		runs, err := runJobs(o, jobs, logf)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "## Single objective (output tokens/s)\n\n")
		report(stdout, so, sprobs, runs)
		all = append(all, runs...)
	}
	if o.warm {
		wr, err := runWarm(o, load, logf)
		if err != nil {
			return err
		}
		reportWarm(stdout, o, wr)
		all = append(all, wr.runs...)
	}
	if o.jsonOut != "" {
		return writeRuns(o.jsonOut, all, problems)
	}
	return nil
}
