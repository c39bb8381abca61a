package natsx

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
)

// PurgeStudy removes everything stored about one study: its proposals, queued
// trials, progress, outcomes, spec and fronts (the --no-load fresh start).
func PurgeStudy(ctx context.Context, js jetstream.JetStream, study string) error {
	if err := events.ValidateStudyName(study); err != nil {
		return err
	}
	purges := []struct{ stream, filter string }{
		{events.StreamCandidates, events.CandidatesOfStudy(study)},
		{events.StreamTrials, events.TrialsOfStudy(study)},
		{events.StreamProgress, "sgtune.progress." + study + ".*"},
		{events.StreamOutcomes, events.OutcomesOfStudy(study)},
	}
	for _, p := range purges {
		s, err := js.Stream(ctx, p.stream)
		if err != nil {
			return fmt.Errorf("purge study %s: open %s: %w", study, p.stream, err)
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(p.filter)); err != nil {
			return fmt.Errorf("purge study %s from %s: %w", study, p.stream, err)
		}
	}
	// Canonical-config claims are keyed <study>.<incarnation>.<hash>: purge them by subject.
	if s, err := js.Stream(ctx, "KV_"+events.BucketCanonical); err == nil {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+events.BucketCanonical+"."+study+".>")); err != nil {
			return fmt.Errorf("purge study %s from %s: %w", study, events.BucketCanonical, err)
		}
	}
	for bucket, keys := range map[string][]string{
		events.BucketStudies: {study},
		events.BucketPareto:  {events.FrontKey(study)},
	} {
		kv, err := KV(ctx, js, bucket)
		if err != nil {
			return fmt.Errorf("purge study %s: %w", study, err)
		}
		for _, k := range keys {
			if err := kv.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("purge study %s: %s/%s: %w", study, bucket, k, err)
			}
		}
	}
	return nil
}

// LiveRunners lists the runners whose heartbeat has not expired.
func LiveRunners(ctx context.Context, js jetstream.JetStream) ([]events.RunnerStatus, error) {
	kv, err := KV(ctx, js, events.BucketFleet)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list runners: %w", err)
	}
	defer lister.Stop()
	var out []events.RunnerStatus
	for key := range lister.Keys() {
		st, _, err := GetJSON[events.RunnerStatus](ctx, kv, key)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue // expired between list and get
			}
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
