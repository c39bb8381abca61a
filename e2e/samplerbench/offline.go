package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/sampler"
)

// runOffline runs one study in process (sampler.InProcess, the sampler's
// own domain): the validator's rules judge each proposal at once
// (validator.Check; its canonical dedup emulated), and a simulated runner
// with fleetGPUs GPUs runs the valid ones, each for its simulated duration
// on as many GPUs as it needs (first-fit in queue order), reporting noisy
// measurements as the exec backend would. warm are finished studies for
// a warm start.
func runOffline(pr *problem, v variant, seed int64, budget int, warm []sampler.WarmStartStudy) (runResult, []sampler.WarmStartStudy, error) {
	res := runResult{surface: pr.surf.Name(), variant: v.name, seed: seed, budget: budget}
	spec := pr.spec
	spec.StudyName = studyName(pr.surf.Name(), v.name, seed)
	spec.NTrials = budget
	if v.startup > 0 {
		spec.Sampler.StartupTrials = v.startup
	}
	st, err := sampler.NewInProcess(spec, sampler.InProcessOptions{Algorithm: v.algo, Seed: &seed, IgnoreInvalid: v.seedMode, WarmStart: warm})
	if err != nil {
		return res, nil, err
	}
	type job struct {
		prop       sampler.InProcessProposal
		v          verdict
		proposedAt float64
		told       int // results told when proposed
		start, end float64
		gpus       int
	}
	record := sampler.WarmStartStudy{Name: spec.StudyName, Spec: spec}
	var queue, running []*job
	canon := map[string]bool{}
	firstSeen := map[string]int{} // cause -> results told when first seen
	free := fleetGPUs
	now, told := 0.0, 0
	busy, firstStart := 0.0, -1.0
	var finished finishedDurations
	t0 := time.Now()
	for {
		done, _ := st.Done(time.Unix(0, 0))
		if !done {
			if room := st.Room(v.capacity()); room > 0 {
				p0 := time.Now()
				props, err := st.Propose(room)
				res.proposeTimes = append(res.proposeTimes, time.Since(p0)/time.Duration(max(1, len(props))))
				if err != nil && len(props) == 0 {
					return res, nil, err
				}
				for _, p := range props {
					vd := pr.j.judge(p.Params, p.Sampler == "baseline")
					if vd.rejected {
						ev := events.CandidateRejected{Envelope: events.Envelope{Study: spec.StudyName, Trial: p.Trial}, Params: p.Params}
						for _, r := range vd.rules {
							ev.Rejections = append(ev.Rejections, events.Rejection{Rule: r})
						}
						res.rejected++
						record.Rejections = append(record.Rejections, ev)
						if err := st.TellRejection(ev); err != nil {
							return res, nil, err
						}
						continue
					}
					if canon[vd.canonical] && p.RepeatOf == nil {
						d := 0
						ev := events.CandidateRejected{Envelope: events.Envelope{Study: spec.StudyName, Trial: p.Trial}, Params: p.Params,
							Rejections: []events.Rejection{{Rule: "dedup.canonical"}}, DuplicateOf: &d}
						res.rejected++
						if err := st.TellRejection(ev); err != nil {
							return res, nil, err
						}
						continue
					}
					canon[vd.canonical] = true
					queue = append(queue, &job{prop: p, v: vd, proposedAt: now, told: told, gpus: max(1, vd.gpus)})
				}
				if len(props) > 0 {
					continue // propose until the room is used (rejections free it again)
				}
			}
		}
		// Start what fits, in queue order, with the runner's reservation
		// of GPUs for a large trial that waited (schedule.go).
		sq := make([]schedJob, len(queue))
		for i, j := range queue {
			sq[i] = schedJob{gpus: j.gpus, queuedAt: j.proposedAt, duration: defaultDuration(j.prop.Params, j.gpus, j.v.m.Failed)}
		}
		sr := make([]schedRunning, len(running))
		for i, j := range running {
			sr[i] = schedRunning{j.gpus, j.end}
		}
		starts := toStart(sq, sr, free, now, finished)
		var waiting []*job
		for i, j := range queue {
			if !starts[i] {
				waiting = append(waiting, j)
				continue
			}
			free -= j.gpus
			j.start = now
			if firstStart < 0 {
				firstStart = now
			}
			j.end = now + sq[i].duration
			running = append(running, j)
		}
		queue = waiting
		if len(running) == 0 {
			if done {
				break
			}
			if len(queue) > 0 {
				return res, nil, fmt.Errorf("a trial needs %d GPUs, the fleet has %d", queue[0].gpus, fleetGPUs)
			}
			if st.Room(v.capacity()) == 0 {
				return res, nil, errors.New("study stalled: nothing in flight and no room")
			}
			continue
		}
		sort.SliceStable(running, func(a, b int) bool { return running[a].end < running[b].end })
		j := running[0]
		running = running[1:]
		now = j.end
		free += j.gpus
		busy += float64(j.gpus) * (j.end - j.start)
		finished.add(j.end - j.start)
		m := j.v.m
		ev := events.TrialResult{Envelope: events.Envelope{Study: spec.StudyName, Trial: j.prop.Trial}, Params: j.prop.Params, Backend: "exec"}
		rec := trialRecord{trial: j.prop.Trial, params: j.prop.Params, proposedAt: secs(j.proposedAt), doneAt: secs(now)}
		if m.Failed {
			ev.State, ev.FailureClass = events.StateFailed, events.FailCrash
			ev.Reason = execReason(m)
			ev.LogTail = ev.Reason
			rec.failed = true
			rec.cause = causeOf(ev.FailureClass, ev.LogTail, ev.Reason)
			if at, seen := firstSeen[rec.cause]; seen && at <= j.told {
				rec.knownCause = true
			}
			if _, seen := firstSeen[rec.cause]; !seen {
				firstSeen[rec.cause] = told + 1
			}
		} else {
			noisy := pr.surf.Noisy(m, trialRNG(spec.StudyName, j.prop.Trial))
			ev.State, ev.Metrics = events.StateComplete, noisy.Metrics
			rec.values = pr.j.values(j.v)
		}
		told++
		res.trials = append(res.trials, rec)
		record.Results = append(record.Results, ev)
		if err := st.TellResult(ev); err != nil {
			return res, nil, err
		}
	}
	res.wall = time.Since(t0)
	if now > firstStart && firstStart >= 0 {
		res.gpuBusy = busy / (float64(fleetGPUs) * (now - firstStart))
	}
	return res, []sampler.WarmStartStudy{record}, nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
