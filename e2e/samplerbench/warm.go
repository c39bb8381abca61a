package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/sgtune/sgtune/pkg/study"
)

// warmResult holds the warm-start benchmark's studies.
type warmResult struct {
	pairs [][2]*problem
	runs  []runResult // variant "cold" or "warm" on the target surfaces; "source" on the sources
}

// warmVariant is the setting of the warm-start studies: the default
// algorithm in parallel.
var warmVariant = variant{name: "gp-ehvi-par", algo: study.AlgoGPEHVI, parallel: true}

// runWarm runs, per pair and seed, a source study on the source surface,
// then a study on the target surface without and with a warm start from it.
func runWarm(o options, load func(Surface) (*problem, error), logf func(string, ...any)) (warmResult, error) {
	var wr warmResult
	for _, pair := range warmPairs {
		var ps [2]*problem
		for i, n := range pair {
			s, ok := surfaceByName(n)
			if !ok {
				return wr, fmt.Errorf("warm start: unknown surface %q", n)
			}
			pr, err := load(s)
			if err != nil {
				return wr, err
			}
			ps[i] = pr
		}
		wr.pairs = append(wr.pairs, ps)
	}
	type job struct {
		pair int
		seed int64
	}
	var jobs []job
	for i := range wr.pairs {
		for seed := range int64(o.seeds) {
			jobs = append(jobs, job{i, seed + 1})
		}
	}
	ch := make(chan job)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Go(func() {
			var stack *serviceStack
			if o.mode == "services" {
				var err error
				if stack, err = startStack(100+w, o.timeScale, logf); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					for range ch {
					}
					return
				}
				defer stack.stop()
			}
			for j := range ch {
				src, dst := wr.pairs[j.pair][0], wr.pairs[j.pair][1]
				runs, err := warmJob(stack, src, dst, j.seed, o.budget)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				wr.runs = append(wr.runs, runs...)
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	logf("warm start: %d studies", len(wr.runs))
	return wr, firstErr
}

func warmJob(stack *serviceStack, src, dst *problem, seed int64, budget int) ([]runResult, error) {
	var out []runResult
	srcName := fmt.Sprintf("sb_%s_source-%s_%d", src.surf.Name(), warmVariant.name, seed)
	coldName := fmt.Sprintf("sb_%s_cold-%s_%d", dst.surf.Name(), warmVariant.name, seed)
	warmName := fmt.Sprintf("sb_%s_warm-%s_%d", dst.surf.Name(), warmVariant.name, seed)
	tag := func(r runResult, v string) runResult { r.variant = v; return r }
	if stack != nil {
		s, err := stack.runNamed(src, warmVariant, seed, budget, srcName, nil)
		if err != nil {
			return nil, err
		}
		c, err := stack.runNamed(dst, warmVariant, seed, budget, coldName, nil)
		if err != nil {
			return nil, err
		}
		w, err := stack.runNamed(dst, warmVariant, seed, budget, warmName, []string{srcName})
		if err != nil {
			return nil, err
		}
		return append(out, tag(s, "source"), tag(c, "cold"), tag(w, "warm")), nil
	}
	s, rec, err := runOffline(src, warmVariant, seed, budget, nil)
	if err != nil {
		return nil, err
	}
	c, _, err := runOffline(dst, warmVariant, seed, budget, nil)
	if err != nil {
		return nil, err
	}
	w, _, err := runOffline(dst, warmVariant, seed, budget, rec)
	if err != nil {
		return nil, err
	}
	return append(out, tag(s, "source"), tag(c, "cold"), tag(w, "warm")), nil
}

// reportWarm prints trials to 90 % of the best known front, cold and warm.
func reportWarm(w io.Writer, o options, wr warmResult) {
	fmt.Fprintf(w, "### Warm start (%s, budget %d, %d seeds)\n\n", warmVariant.name, o.budget, o.seeds)
	fmt.Fprintln(w, "| source -> target | trials to 0.90, cold (median / max) | warm (median / max) | @10 cold / warm | @25 cold / warm | @50 cold / warm | known-cause failures, cold / warm |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, pair := range wr.pairs {
		dst := pair[1]
		var to [2][]float64
		var at [3][2][]float64
		var known [2]int
		for _, r := range wr.runs {
			if r.surface != dst.surf.Name() || (r.variant != "cold" && r.variant != "warm") {
				continue
			}
			i := 0
			if r.variant == "warm" {
				i = 1
			}
			n := dst.trialsTo(r, 0.9)
			if n == 0 {
				n = o.budget + 1 // never: counted as past the budget
			}
			to[i] = append(to[i], float64(n))
			for k, m := range []int{10, 25, 50} {
				at[k][i] = append(at[k][i], dst.hvAt(r, m)/dst.bestH)
			}
			kn, _ := wasted(r, 0)
			known[i] += kn
		}
		fmt.Fprintf(w, "| %s -> %s | %.0f / %.0f | %.0f / %.0f | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f | %d / %d |\n",
			pair[0].surf.Name(), dst.surf.Name(), summarize(to[0]).median, summarize(to[0]).max, summarize(to[1]).median, summarize(to[1]).max,
			summarize(at[0][0]).median, summarize(at[0][1]).median, summarize(at[1][0]).median, summarize(at[1][1]).median,
			summarize(at[2][0]).median, summarize(at[2][1]).median, known[0], known[1])
	}
	fmt.Fprintf(w, "\n(%d+1 means the study never reached 0.90 within its budget.)\n\n", o.budget)
}
