package natsio

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// TailMeasurements delivers the partial measurements runners publish for the
// study's running trials (progress with events.PhaseMeasured), the stored
// ones first, until ctx is done. Early stopping (sampler.early_stop) judges
// them; the other progress reports are skipped.
func (b *Bus) TailMeasurements(ctx context.Context, onMeasurement func(trial int, incarnation string, m events.Measurement)) error {
	err := natsx.Tail(ctx, b.js, events.StreamProgress, events.ProgressOfStudy(b.study), func(data []byte, meta natsx.Meta) error {
		ev, err := events.Decode[events.TrialProgress](data, events.TypeTrialProgress)
		if err != nil {
			b.log.Debug().Err(err).Str("subject", meta.Subject).Msg("skipping an undecodable progress report")
			return nil
		}
		if ev.Phase == events.PhaseMeasured && ev.Measurement != nil {
			onMeasurement(ev.Trial, ev.Incarnation, *ev.Measurement)
		}
		return nil
	}, nil, b.feedOptions("measurements")...)
	if err != nil {
		return fmt.Errorf("tail measurements: %w", err)
	}
	return nil
}

// RequestStop asks the runner of a trial to stop it early: a stop request
// in the leases bucket (sgtune_leases/stop.<study>.<trial>), which the
// trial's runner watches; it records the trial PRUNED with what it measured.
func (b *Bus) RequestStop(ctx context.Context, trial int, reason string, now time.Time) error {
	req := events.StopRequest{Study: b.study, Trial: trial, Reason: reason, By: "sampler", EarlyStop: true, RequestedAt: now.UTC()}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	kv, err := natsx.KV(ctx, b.js, events.BucketLeases)
	if err != nil {
		return fmt.Errorf("open %s: %w", events.BucketLeases, err)
	}
	if _, err := kv.Put(ctx, events.StopKey(b.study, trial), data); err != nil {
		return fmt.Errorf("request the stop of trial %d: %w", trial, err)
	}
	return nil
}

// Epoch is the incarnation of the study this bus proposes for (SetEpoch).
func (b *Bus) Epoch() string { return b.epoch }
