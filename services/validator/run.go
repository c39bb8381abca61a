package validator

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/validator/internal/natsio"
)

// Run runs the validator until ctx is done: it connects to NATS, provisions
// the topology, the dedup bucket and the durable consumer, and validates
// candidates with cfg.Workers workers. It returns nil after a clean shutdown
// (in-flight candidates finished, connection drained).
func Run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := logger.With().Str("service", "validator").Logger()

	nc, js, err := natsx.Connect(ctx, cfg.NATS, log)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	// Drain flushes pending acks and publishes before the connection closes.
	defer natsx.Drain(nc, 5*time.Second, log)
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{Replicas: cfg.Replicas}); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	claims, err := natsio.EnsureKVClaims(ctx, js, cfg.Replicas)
	if err != nil {
		return err
	}
	studiesKV, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		return err
	}
	cons, err := natsx.EnsureConsumer(ctx, js, events.StreamCandidates, natsio.ConsumerConfig())
	if err != nil {
		return err
	}
	fleet := natsio.NewFleet(func(ctx context.Context) ([]events.RunnerStatus, error) {
		return natsx.LiveRunners(ctx, js)
	}, cfg.FleetRefresh, time.Now)
	v := natsio.NewValidator(js, natsio.NewStudies(studiesKV), fleet, claims, natsio.Options{
		DeviceNum:  cfg.DeviceNum,
		StudyRetry: cfg.StudyRetry,
		FleetWait:  cfg.FleetWait,
		FleetPoll:  min(cfg.FleetRefresh, time.Second),
		Logger:     log,
	})

	handler := v.Handler()
	if cfg.Metrics != nil {
		handler = newMetrics(cfg.Metrics).timed(handler)
	}
	log.Info().Int("workers", cfg.Workers).Int("device_num_override", cfg.DeviceNum).Msg("validator started")
	g, gctx := errgroup.WithContext(ctx)
	sweeper := natsio.NewSweeper(js, fleet, natsio.SweepOptions{Wait: cfg.NoRunnerWait, Every: min(cfg.FleetRefresh, 5*time.Second), Logger: log})
	g.Go(func() error { sweeper.Run(gctx); return nil })
	g.Go(func() error {
		return natsx.Consume(gctx, js, cons, natsx.ConsumeOptions{
			Workers:    cfg.Workers,
			MaxDeliver: natsio.MaxDeliver,
			// A candidate waiting for the first live runner stays in the
			// handler; InProgress keeps it from being redelivered meanwhile.
			InProgressEvery: natsio.InProgressEvery,
			Logger:          log,
			// A candidate that can never be validated still gets an outcome,
			// so the sampler does not wait for it.
			OutcomeOnDeadLetter: true,
		}, handler)
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	log.Info().Msg("validator stopped")
	return nil
}
