package reporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
	"github.com/sgtune/sgtune/services/reporter/internal/natsio"
	"github.com/sgtune/sgtune/services/reporter/internal/resultsfile"
)

// The documents the reporter publishes (see internal/front for field docs).
type (
	// FrontDoc is a study's Pareto front, the value of KV pareto/front(.<study>).
	FrontDoc = front.FrontDoc
	// FrontMember is one Pareto-optimal trial.
	FrontMember = front.FrontMember
	// ObjectiveInfo describes one objective.
	ObjectiveInfo = front.ObjectiveInfo
	// ReferenceInfo says how the hypervolume's reference point was chosen.
	ReferenceInfo = front.ReferenceInfo
	// BaselineInfo is the baseline trial's objective values.
	BaselineInfo = front.BaselineInfo
	// Counts counts a study's outcomes.
	Counts = front.Counts
	// ResultsDoc is the results file: FrontDoc plus trials and hypervolume_history.
	ResultsDoc = front.ResultsDoc
	// TrialRecord is one trial of the results file.
	TrialRecord = front.TrialRecord
	// HVPoint is one point of the hypervolume history.
	HVPoint = front.HVPoint
)

// Run runs the reporter until ctx is done: it connects, provisions the
// topology and its durable consumer, and folds outcomes until ctx is
// cancelled; then it finishes the outcome in hand, prints the console summary
// of every study it updated (unless cfg.Quiet) and drains the connection.
// It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger = logger.With().Str("service", "reporter").Logger()
	err := run(ctx, cfg, logger)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting: a clean shutdown
	}
	return err
}

func run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	nc, js, err := natsx.Connect(ctx, cfg.NATS, logger)
	if err != nil {
		return err
	}
	defer natsx.Drain(nc, 5*time.Second, logger)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: cfg.Replicas}); err != nil {
		return err
	}
	cons, err := natsio.EnsureConsumer(ctx, js)
	if err != nil {
		return err
	}
	store, err := natsio.OpenFrontStore(ctx, js)
	if err != nil {
		return err
	}
	var sink app.ResultsSink
	if cfg.Output != "" {
		sink = resultsfile.Writer{Path: cfg.Output}
	}
	svc := app.NewService(natsio.NewStudies(js), natsio.NewHistory(js, logger), store, sink, logger)
	presence, stopPresence := context.WithCancel(ctx)
	presenceDone := make(chan struct{})
	go func() { defer close(presenceDone); natsio.Announce(presence, js, natsx.Instance(), logger) }()
	defer func() { stopPresence(); <-presenceDone }()
	if cfg.Metrics != nil {
		m := newMetrics(cfg.Metrics)
		svc.OnFrontStored(func(doc front.FrontDoc, o front.Outcome) { m.frontStored(doc, o.OccurredAt, time.Now()) })
	}
	logger.Info().Str("stream", events.StreamOutcomes).Str("durable", events.DurableReporter).Str("output", cfg.Output).
		Msg("reporter consuming outcomes")
	err = natsx.Consume(ctx, js, cons, natsx.ConsumeOptions{
		Workers:    1, // one study state, folded in order
		MaxDeliver: natsio.MaxDeliver,
		// A first outcome replays its whole study; keep the message ours meanwhile.
		InProgressEvery: natsio.AckWait / 3,
		Logger:          logger,
	}, natsio.NewHandler(svc).Handle)
	if !cfg.Quiet {
		for _, doc := range svc.Fronts() {
			if perr := PrintFront(cfg.Stdout, doc); perr != nil {
				logger.Warn().Err(perr).Msg("could not print the summary")
			}
		}
	}
	if err != nil {
		return fmt.Errorf("consume outcomes: %w", err)
	}
	logger.Info().Msg("reporter stopped")
	return nil
}

// PrintFront writes the console summary of doc in the seed's layout (header,
// number of finished trials, number of Pareto optimal solutions, each
// solution's TTFT, TPS and parameters) plus sgtune's additions (trial number,
// gain over the baseline, launch command, counts by failure class and
// rejection rule, hypervolume and its reference point).
func PrintFront(w io.Writer, doc FrontDoc) error { return front.Print(w, doc) }

// EncodeFront encodes doc exactly as it is stored in KV: compact, one line,
// ASCII only.
func EncodeFront(doc FrontDoc) ([]byte, error) { return front.EncodeFront(doc) }

// ReadFront reads a study's front from KV pareto/front.<study>; study ""
// reads pareto/front, the most recently updated study. A missing front
// returns an error wrapping ErrNoFront.
func ReadFront(ctx context.Context, js jetstream.JetStream, study string) (FrontDoc, error) {
	key := events.KeyFront
	if study != "" {
		key = events.FrontKey(study)
	}
	doc, err := natsio.ReadFront(ctx, js, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return FrontDoc{}, fmt.Errorf("%w: %s/%s", ErrNoFront, events.BucketPareto, key)
	}
	return doc, err
}

// WriteResults rebuilds a study's full results from the outcomes stream (it
// does not need a running reporter) and writes them atomically to path. Study
// "" means the study of pareto/front. Errors wrap ErrStudyNotFound when the
// study has no entry in sgtune_studies, ErrNoFront when study is "" and no
// front is stored.
func WriteResults(ctx context.Context, js jetstream.JetStream, study, path string) error {
	doc, err := ReadResults(ctx, js, study)
	if err != nil {
		return err
	}
	return resultsfile.Write(path, doc)
}

// ReadResults rebuilds a study's full results (every trial, the front, the
// hypervolume history) from the outcomes stream. Study "" means the study of
// pareto/front. Errors as WriteResults.
func ReadResults(ctx context.Context, js jetstream.JetStream, study string) (ResultsDoc, error) {
	if study == "" {
		doc, err := ReadFront(ctx, js, "")
		if err != nil {
			return ResultsDoc{}, err
		}
		study = doc.StudyName
	}
	info, err := natsio.NewStudies(js).Study(ctx, study)
	if err != nil {
		return ResultsDoc{}, fmt.Errorf("results of %s: %w", study, err)
	}
	r, err := app.Rebuild(ctx, natsio.NewHistory(js, zerolog.Nop()), study, info, zerolog.Nop())
	if err != nil {
		return ResultsDoc{}, fmt.Errorf("results of %s: %w", study, err)
	}
	return r.Results(), nil
}

// LiveReporters counts the reporters running now (their presence leases).
func LiveReporters(ctx context.Context, js jetstream.JetStream) (int, error) {
	return natsio.LiveReporters(ctx, js)
}
