package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// studyJob is one study to run.
type studyJob struct {
	pr     *problem
	v      variant
	seed   int64
	budget int
}

// runJobs runs the studies, o.workers at a time (offline) or on o.workers
// service stacks (services).
func runJobs(o options, jobs []studyJob, logf func(string, ...any)) ([]runResult, error) {
	out := make([]runResult, len(jobs))
	errs := make([]error, len(jobs))
	ch := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	finished := 0
	t0 := time.Now()
	for w := range o.workers {
		wg.Go(func() {
			var stack *serviceStack
			if o.mode == "services" {
				var err error
				if stack, err = startStack(w, o.timeScale, logf); err != nil {
					for i := range ch {
						errs[i] = err
					}
					return
				}
				defer stack.stop()
			}
			for i := range ch {
				j := jobs[i]
				if stack != nil {
					out[i], errs[i] = stack.runStudy(j.pr, j.v, j.seed, j.budget, nil)
				} else {
					out[i], _, errs[i] = runOffline(j.pr, j.v, j.seed, j.budget, nil)
				}
				mu.Lock()
				finished++
				if errs[i] != nil {
					logf("%s %s seed %d: %v", j.pr.surf.Name(), j.v.name, j.seed, errs[i])
				} else if finished%10 == 0 || finished == len(jobs) {
					logf("%d/%d studies (%s)", finished, len(jobs), time.Since(t0).Round(time.Second))
				}
				mu.Unlock()
			}
		})
	}
	for i := range jobs {
		ch <- i
	}
	close(ch)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// summary is the median and minimum of some values.
type summary struct{ median, min, max float64 }

func summarize(vs []float64) summary {
	if len(vs) == 0 {
		return summary{}
	}
	c := slices.Clone(vs)
	slices.Sort(c)
	med := c[len(c)/2]
	if len(c)%2 == 0 {
		med = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	return summary{median: med, min: c[0], max: c[len(c)-1]}
}

func durQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := slices.Clone(ds)
	slices.Sort(c)
	return c[min(len(c)-1, int(q*float64(len(c))))]
}

// knownAfter is where the wasted-launch count starts: launches after the 30th.
const knownAfter = 30

// report prints, per surface, each setting's hypervolume fractions and
// wasted launches, then the overview.
func report(w io.Writer, o options, probs []*problem, runs []runResult) {
	mid := min(50, o.budget)
	for _, pr := range probs {
		held := ""
		if pr.surf.HeldOut() {
			held = " (HELD OUT)"
		}
		var refs []string
		for k, o := range pr.spec.Objectives {
			refs = append(refs, fmt.Sprintf("%s %.4g %s", o.Name, pr.ref[k], o.Unit))
		}
		fmt.Fprintf(w, "### %s%s\n\n%s. Reference point %s; best known front %d members, hypervolume %.6g.\n\n",
			pr.surf.Name(), held, pr.surf.Describe(), strings.Join(refs, ", "), len(pr.best), pr.bestH)
		fmt.Fprintf(w, "| setting | @%d median | @%d min | @%d median | @%d min | known-cause failures after the %dth (all seeds) | failed/study | rejected/study | propose p50 | propose max |\n",
			mid, mid, o.budget, o.budget, knownAfter)
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, v := range o.variants {
			if !pr.accepts(v) {
				continue
			}
			var f50, f100, failed, rej []float64
			var times []time.Duration
			known, launches := 0, 0
			for _, r := range runs {
				if r.surface != pr.surf.Name() || r.variant != v.name {
					continue
				}
				f50 = append(f50, pr.hvAt(r, mid)/pr.bestH)
				f100 = append(f100, pr.hvAt(r, o.budget)/pr.bestH)
				k, l := wasted(r, knownAfter)
				known, launches = known+k, launches+l
				nf := 0
				for _, t := range r.trials {
					if t.failed {
						nf++
					}
				}
				failed = append(failed, float64(nf))
				rej = append(rej, float64(r.rejected))
				times = append(times, r.proposeTimes...)
			}
			if len(f50) == 0 {
				continue
			}
			a, b := summarize(f50), summarize(f100)
			share := 0.0
			if launches > 0 {
				share = 100 * float64(known) / float64(launches)
			}
			p50, pmax := "–", "–"
			if len(times) > 0 {
				p50, pmax = durQuantile(times, 0.5).Round(100*time.Microsecond).String(), durQuantile(times, 1).Round(time.Millisecond).String()
			}
			fmt.Fprintf(w, "| %s | %.3f | %.3f | %.3f | %.3f | %.1f %% (%d of %d) | %.0f | %.0f | %s | %s |\n", v.name,
				a.median, a.min, b.median, b.min, share, known, launches, summarize(failed).median, summarize(rej).median, p50, pmax)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "### Overview: median fraction @%d / @%d (HO = held out)\n\n| setting |", mid, o.budget)
	for _, pr := range probs {
		ho := ""
		if pr.surf.HeldOut() {
			ho = " (HO)"
		}
		fmt.Fprintf(w, " %s%s |", pr.surf.Name(), ho)
	}
	fmt.Fprint(w, "\n|---|")
	for range probs {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, v := range o.variants {
		if !probs[0].accepts(v) {
			continue
		}
		fmt.Fprintf(w, "| %s |", v.name)
		for _, pr := range probs {
			var f50, f100 []float64
			for _, r := range runs {
				if r.surface == pr.surf.Name() && r.variant == v.name {
					f50 = append(f50, pr.hvAt(r, mid)/pr.bestH)
					f100 = append(f100, pr.hvAt(r, o.budget)/pr.bestH)
				}
			}
			fmt.Fprintf(w, " %.3f / %.3f |", summarize(f50).median, summarize(f100).median)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// writeRuns writes every study's record (hypervolume fraction after each
// benchmarked trial, failures) as JSON.
func writeRuns(path string, runs []runResult, probs map[string]*problem) error {
	type trialOut struct {
		Trial      int            `json:"trial"`
		Params     map[string]any `json:"params"`
		Values     []float64      `json:"values,omitempty"`
		Failed     bool           `json:"failed,omitempty"`
		Cause      string         `json:"cause,omitempty"`
		KnownCause bool           `json:"known_cause,omitempty"`
	}
	type out struct {
		Surface  string     `json:"surface"`
		Variant  string     `json:"variant"`
		Seed     int64      `json:"seed"`
		Fraction []float64  `json:"fraction_after_each_trial"`
		Rejected int        `json:"rejected"`
		Trials   []trialOut `json:"trials"`
	}
	var all []out
	for _, r := range runs {
		pr := probs[r.surface]
		o := out{Surface: r.surface, Variant: r.variant, Seed: r.seed, Rejected: r.rejected}
		for n := 1; n <= len(r.trials); n++ {
			o.Fraction = append(o.Fraction, pr.hvAt(r, n)/pr.bestH)
			t := r.trials[n-1]
			o.Trials = append(o.Trials, trialOut{Trial: t.trial, Params: t.params, Values: t.values, Failed: t.failed, Cause: t.cause, KnownCause: t.knownCause})
		}
		all = append(all, o)
	}
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
