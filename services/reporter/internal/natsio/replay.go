package natsio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// ReplayAfter delivers a study's outcomes stored after stream sequence
// after, oldest first, and returns the sequence of the last one stored when
// it started (after itself when there is nothing new), so a reader that
// keeps a report folds only what is new on each call. Undecodable messages
// are skipped.
func ReplayAfter(ctx context.Context, js jetstream.JetStream, name string, after uint64, fn func(front.Outcome) error) (uint64, error) {
	s, err := js.Stream(ctx, events.StreamOutcomes)
	if err != nil {
		return after, fmt.Errorf("open stream %s: %w", events.StreamOutcomes, err)
	}
	filter := events.OutcomesOfStudy(name)
	last, err := s.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return after, nil
	}
	if err != nil {
		return after, fmt.Errorf("read the end of %s (%s): %w", events.StreamOutcomes, filter, err)
	}
	target := last.Sequence
	if target <= after {
		return after, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return after, fmt.Errorf("replay %s (%s): %w", events.StreamOutcomes, filter, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return after, fmt.Errorf("replay %s (%s): %w", events.StreamOutcomes, filter, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return after, ctx.Err()
			}
			return after, fmt.Errorf("replay %s (%s): %w", events.StreamOutcomes, filter, err)
		}
		meta := natsx.MetaOf(msg)
		if o, err := DecodeOutcome(msg.Data()); err == nil {
			if err := fn(o); err != nil {
				return after, err
			}
		}
		after = meta.StreamSeq
		if meta.StreamSeq >= target {
			return after, nil
		}
	}
}

// LastProgress returns the last progress report of each given trial of a
// study that has one (a trial not claimed yet has none).
func LastProgress(ctx context.Context, js jetstream.JetStream, name string, trials []int) ([]events.TrialProgress, error) {
	s, err := js.Stream(ctx, events.StreamProgress)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamProgress, err)
	}
	var out []events.TrialProgress
	for _, n := range trials {
		msg, err := s.GetLastMsgForSubject(ctx, events.ProgressSubject(name, n))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the progress of trial %d: %w", n, err)
		}
		var p events.TrialProgress
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			continue // a malformed report: the trial shows when its outcome arrives
		}
		out = append(out, p)
	}
	return out, nil
}
