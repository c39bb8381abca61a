package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner/internal/prefetch"
)

// ModelGate keeps models on the host and says whether the runner may claim
// trials (prefetch.Gate implements it).
type ModelGate interface {
	// Want names the models of the running studies.
	Want(models []prefetch.Model)
	// Ready is false, with the reason, while one of them is not present.
	Ready() (bool, string)
}

// errWatchClosed: the studies watch ended without the runner stopping.
var errWatchClosed = errors.New("studies watch closed")

// ready reports whether the runner may claim trials, and why not.
func (r *Runner) ready() (bool, string) {
	if r.cfg.Models == nil {
		return true, ""
	}
	return r.cfg.Models.Ready()
}

// watchStudyModels follows the sgtune_studies bucket and names the models
// of the running studies to the gate, from the first complete read on (the
// gate is not ready before it), until ctx is done. A lost watch is opened
// again.
func (r *Runner) watchStudyModels(ctx context.Context) {
	for ctx.Err() == nil {
		err := r.followStudies(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn().Err(err).Msg("watching the studies' models failed; watching again")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runner) followStudies(ctx context.Context) error {
	kv, err := natsx.KV(ctx, r.js, events.BucketStudies)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	models := map[string]prefetch.Model{} // running study -> its model
	synced := false
	publish := func() {
		list := make([]prefetch.Model, 0, len(models))
		seen := map[prefetch.Model]bool{}
		for _, m := range models {
			if !seen[m] {
				seen[m] = true
				list = append(list, m)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].String() < list[j].String() })
		r.cfg.Models.Want(list)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil { // every current entry delivered
				synced = true
				publish()
				continue
			}
			changed := applyStudy(models, e)
			if synced && changed {
				publish()
			}
		}
	}
}

// applyStudy updates the running studies' models with one KV entry and
// reports whether they changed.
func applyStudy(models map[string]prefetch.Model, e jetstream.KeyValueEntry) bool {
	before, had := models[e.Key()]
	delete(models, e.Key())
	if e.Operation() == jetstream.KeyValuePut {
		var st events.StudyState
		if json.Unmarshal(e.Value(), &st) == nil && st.Status == events.StudyRunning {
			if spec, err := study.FromJSON(st.Spec); err == nil {
				models[e.Key()] = prefetch.Model{
					Path:        spec.Model.Path,
					Revision:    study.AsString(spec.Model.StaticArgs, "revision"),
					DownloadDir: study.AsString(spec.Model.StaticArgs, "download_dir"),
				}
			}
		}
	}
	after, has := models[e.Key()]
	return had != has || before != after
}
