package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/reporter"
)

// watchFailures follows the study's outcomes and reports on failing (once)
// when the failure streak says the study should stop (see failureStreak).
// Outcomes stored before this run only tell the baseline's fate.
func watchFailures(ctx context.Context, js jetstream.JetStream, studyName string, maxStreak int, needBaseline bool, failing chan<- string) {
	streak := failureStreak{limit: maxStreak, needBaseline: needBaseline}
	live := false
	reported := false
	_ = natsx.Tail(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy(studyName), func(data []byte, _ natsx.Meta) error {
		if reported {
			return nil
		}
		var r events.TrialResult
		if err := json.Unmarshal(data, &r); err != nil || r.Type != events.TypeTrialResult {
			return nil // rejections are not benchmarks
		}
		if streak.observe(r.Trial, r.State == events.StateComplete, r.FailureClass, r.Reason, live) {
			reported = true
			failing <- streak.reason()
		}
		return nil
	}, func() { live = true })
}

// reporterWhenNoneLive runs run once no reporter is live, polling every 5 s.
func reporterWhenNoneLive(ctx context.Context, js jetstream.JetStream, run func() error) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := reporter.LiveReporters(ctx, js); err == nil && n == 0 {
			return run()
		}
	}
}

// readStudy reads the study's counters from the studies bucket.
func readStudy(ctx context.Context, js jetstream.JetStream, name string) (events.StudyState, error) {
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return events.StudyState{}, err
	}
	st, _, err := natsx.GetJSON[events.StudyState](ctx, kv, name)
	return st, err
}

// waitReported waits until the reporter's front counts every outcome the study has.
func waitReported(ctx context.Context, js jetstream.JetStream, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := readStudy(ctx, js, name)
		if err == nil {
			// Both keys: the reporter writes front.<study>, then front (the
			// latest study's), which users read as `nats kv get pareto front`.
			want := st.Benchmarked + st.Rejected
			doc, ferr := reporter.ReadFront(ctx, js, name)
			latest, lerr := reporter.ReadFront(ctx, js, "")
			latestDone := lerr == nil && (latest.StudyName != name || latest.Counts.Outcomes >= want)
			if ferr == nil && doc.Counts.Outcomes >= want && latestDone {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reporter did not fold every outcome within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// showProgress prints one line whenever the study's counters change.
func showProgress(ctx context.Context, js jetstream.JetStream, name string, w io.Writer, start time.Time) {
	last := ""
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := readStudy(ctx, js, name)
		if err != nil {
			continue
		}
		failed, front := 0, 0
		if doc, err := reporter.ReadFront(ctx, js, name); err == nil {
			failed, front = doc.Counts.Failed, len(doc.ParetoFront)
		}
		running := max(st.Proposed-st.Benchmarked-st.Rejected, 0)
		line := fmt.Sprintf("trials %d/%d benchmarked · %d in flight · %d failed · %d rejected · front %d",
			st.Benchmarked, st.NTrials, running, failed, st.Rejected, front)
		if line != last {
			fmt.Fprintf(w, "[%s] %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
	}
}
