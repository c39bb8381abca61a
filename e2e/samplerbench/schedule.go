package main

import "sort"

// The offline runner's scheduling: what the real runner's scheduler
// (services/runner/internal/packing) does, on the simulator's exact
// durations. Jobs start in queue order while they fit; a job that does not
// fit and has waited the reservation delay (the mean duration of the trials
// finished so far, as the runner's) reserves the GPUs it needs, and a later
// job may still start (backfill) when it ends before the reserved job could
// start or leaves it enough GPUs. Without the reservation, first fit in
// queue order starved 8-GPU trials behind a stream of 1-GPU ones for 30
// results and more, a delay the services never show.

// schedJob is what scheduling needs of a queued job.
type schedJob struct {
	gpus     int
	queuedAt float64
	duration float64 // how long it will run once started
}

// schedRunning is a running job's GPUs and end.
type schedRunning struct {
	gpus int
	end  float64
}

// plan returns the indices of queue to start now, in order, given the free
// GPUs, the running jobs, the time and the reservation delay.
func plan(queue []schedJob, running []schedRunning, free int, now, reserveAfter float64) []int {
	var start []int
	running = append([]schedRunning(nil), running...)
	reserved := false
	var shadow float64 // when the reserved job can start
	spare := 0         // GPUs free at the shadow time beyond the reserved job's
	for i, j := range queue {
		if j.gpus > free {
			if !reserved && now-j.queuedAt >= reserveAfter {
				reserved = true
				shadow, spare = shadowTime(running, free, j.gpus)
			}
			continue
		}
		if !reserved {
			start = append(start, i)
			free -= j.gpus
			running = append(running, schedRunning{j.gpus, now + j.duration})
			continue
		}
		switch {
		case now+j.duration <= shadow:
		case j.gpus <= spare:
			spare -= j.gpus
		default:
			continue
		}
		start = append(start, i)
		free -= j.gpus
		running = append(running, schedRunning{j.gpus, now + j.duration})
	}
	return start
}

// shadowTime is when need GPUs are free for the first time as the running
// jobs end, and how many beyond need are free then.
func shadowTime(running []schedRunning, free, need int) (float64, int) {
	rs := append([]schedRunning(nil), running...)
	sort.Slice(rs, func(a, b int) bool { return rs[a].end < rs[b].end })
	for _, r := range rs {
		free += r.gpus
		if free >= need {
			return r.end, free - need
		}
	}
	return 0, 0 // never: the fleet is too small (the caller reports it)
}

// finishedDurations are the durations of the trials finished so far: their
// mean is the reservation delay (0 before any ended, as the runner's).
type finishedDurations struct {
	n     int
	total float64
}

func (f *finishedDurations) add(d float64) { f.n, f.total = f.n+1, f.total+d }

func (f finishedDurations) mean() float64 {
	if f.n == 0 {
		return 0
	}
	return f.total / float64(f.n)
}

// toStart is plan's answer as a set of queue indices.
func toStart(queue []schedJob, running []schedRunning, free int, now float64, done finishedDurations) map[int]bool {
	starts := map[int]bool{}
	for _, i := range plan(queue, running, free, now, done.mean()) {
		starts[i] = true
	}
	return starts
}
