package reporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
	"github.com/sgtune/sgtune/services/reporter/internal/natsio"
	"github.com/sgtune/sgtune/services/reporter/internal/page"
)

// PageHandler serves the live page of a study (study "" follows
// pareto/front, the latest study):
//
//	GET /            the page: HTML with its script and style inline and the current data embedded
//	GET /data.json   the data the page draws (ETag'd: If-None-Match answers 304 while nothing changed)
//	GET /front.json  the front document, as in KV
//
// It needs no running reporter: it folds the study's outcomes from the
// outcomes stream itself, keeping its report between requests and reading
// only the outcomes stored since the last one.
func PageHandler(js jetstream.JetStream, studyName string) http.Handler {
	lp := &livePage{js: js, study: studyName}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", lp.serveHTML)
	mux.HandleFunc("GET /data.json", lp.serveData)
	mux.HandleFunc("GET /front.json", func(w http.ResponseWriter, r *http.Request) {
		doc, err := ReadFront(r.Context(), js, studyName)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		b, err := EncodeFront(doc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return mux
}

// livePage keeps one study's report up to date from the stream.
type livePage struct {
	js    jetstream.JetStream
	study string

	mu      sync.Mutex
	name    string
	started time.Time
	report  *front.Report
	last    uint64 // the stream sequence folded up to
}

// data folds what is new and builds the page's data.
func (lp *livePage) data(ctx context.Context) (page.Data, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	name := lp.study
	if name == "" {
		doc, err := ReadFront(ctx, lp.js, "")
		if err != nil {
			return page.Data{}, err
		}
		name = doc.StudyName
	}
	st, err := natsio.ReadStudyState(ctx, lp.js, name)
	if err != nil {
		return page.Data{Study: name}, err
	}
	spec, err := study.FromJSON(st.Spec)
	if err != nil {
		return page.Data{Study: name}, fmt.Errorf("study %s: %w", name, err)
	}
	if lp.report == nil || name != lp.name || !st.StartedAt.Equal(lp.started) {
		lp.name, lp.started, lp.last = name, st.StartedAt, 0
		lp.report = front.NewReport(name, spec, st.StartedAt)
	}
	lp.last, err = natsio.ReplayAfter(ctx, lp.js, name, lp.last, func(o front.Outcome) error {
		_, _ = lp.report.Fold(o) // conflicts and bad outcomes: the reporter logs them
		return nil
	})
	if err != nil {
		return page.Data{Study: name}, err
	}
	results := lp.report.Results()
	status := page.Status{Status: st.Status, StopReason: st.StopReason, Budget: st.NTrials, Proposed: st.Proposed}
	status.Running = lp.running(ctx, name, results, st.Proposed)
	return page.Build(results, spec, status, time.Now()), nil
}

// running lists the trials in flight that a runner reported working on: the
// trial numbers below proposed with no outcome yet, each with its last
// progress report (a few reads: no more trials are in flight than slots).
func (lp *livePage) running(ctx context.Context, name string, results ResultsDoc, proposed int) []page.Running {
	done := make(map[int]bool, len(results.Trials))
	for _, t := range results.Trials {
		done[t.TrialNumber] = true
	}
	var open []int
	for n := proposed - 1; n >= 0 && len(open) < 256; n-- {
		if !done[n] {
			open = append(open, n)
		}
	}
	reports, err := natsio.LastProgress(ctx, lp.js, name, open)
	if err != nil {
		return nil // the timeline shows finished trials only this time
	}
	out := make([]page.Running, 0, len(reports))
	for _, p := range reports {
		if p.Phase == events.PhaseStopping && len(p.GPUs) == 0 {
			continue
		}
		out = append(out, page.Running{Trial: p.Trial, Runner: p.Runner, GPUs: p.GPUs, Phase: p.Phase,
			Claimed: p.OccurredAt.Add(-p.Elapsed.D())})
	}
	return out
}

func (lp *livePage) serveHTML(w http.ResponseWriter, r *http.Request) {
	d, err := lp.data(r.Context())
	if err != nil {
		// The study may not exist yet (the page is up before its first
		// proposal): serve the page anyway; it polls until there is data.
		d = page.Waiting(firstNonEmpty(d.Study, lp.study, "(the latest study)"), err.Error(), time.Now())
	}
	b, err := page.Render(d)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (lp *livePage) serveData(w http.ResponseWriter, r *http.Request) {
	d, err := lp.data(r.Context())
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrNoFront) || errors.Is(err, ErrStudyNotFound) {
			status = http.StatusServiceUnavailable // not yet: the page retries
		}
		http.Error(w, err.Error(), status)
		return
	}
	body, etag, err := page.Encode(d)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
