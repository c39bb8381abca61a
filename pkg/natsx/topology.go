package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
)

// Topology says how to provision sgtune's streams and buckets.
type Topology struct {
	// Replicas of every stream and bucket: 1 on a single server, 3 on a cluster.
	Replicas int
	// FleetTTL is how long a runner's heartbeat entry lives; default 30 s.
	FleetTTL time.Duration
	// LeaseTTL is how long a lease (events.BucketLeases) lives after its
	// last renewal; default DefaultLeaseTTL (30 s).
	LeaseTTL time.Duration
}

// StreamAdvisories captures JetStream's max-deliveries and terminated advisories, so a
// trial that exhausted its deliveries is never lost silently (the runner's
// advisory watcher, durable DurableMaxDeliveries, turns them into outcomes).
const StreamAdvisories = "SGTUNE_ADVISORIES"

// StreamConfigs returns the configuration of every sgtune stream.
func StreamConfigs(t Topology) []jetstream.StreamConfig {
	r := max(t.Replicas, 1)
	return []jetstream.StreamConfig{
		{
			Name: events.StreamCandidates, Subjects: []string{events.SubjectCandidatesAll},
			Description: "every proposal of every study", Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
		},
		{
			Name: events.StreamTrials, Subjects: []string{events.SubjectTrialsAll},
			Description: "validated trials waiting for a runner (work queue)", Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
		},
		{
			Name: events.StreamProgress, Subjects: []string{events.SubjectProgressAll},
			Description: "progress of running trials", Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, MaxAge: 24 * time.Hour, MaxMsgsPerSubject: 64,
		},
		{
			Name: events.StreamOutcomes, Subjects: []string{events.SubjectOutcomesAll},
			Description: "the one outcome (rejection or result) of every trial: the studies' record",
			Retention:   jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: r,
			Duplicates: 2 * time.Minute,
		},
		{
			Name: events.StreamDeadLetters, Subjects: []string{events.SubjectDeadLettersAll},
			Description: "messages no consumer could process, with the reason", Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: r, MaxAge: 30 * 24 * time.Hour,
		},
		{
			Name: StreamAdvisories,
			Subjects: []string{
				// <stream>.<consumer>: a wildcard must be a whole token, so this
				// captures every stream's; the server has only sgtune's here.
				"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*",
				"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.*.*",
			},
			Description: "max-deliveries and terminated advisories of sgtune's consumers",
			Retention:   jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Replicas: r,
			MaxAge: 7 * 24 * time.Hour,
		},
	}
}

// KVConfigs returns the configuration of every sgtune bucket.
func KVConfigs(t Topology) []jetstream.KeyValueConfig {
	r := max(t.Replicas, 1)
	ttl := t.FleetTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	leaseTTL := t.LeaseTTL
	if leaseTTL <= 0 {
		leaseTTL = DefaultLeaseTTL
	}
	return []jetstream.KeyValueConfig{
		{Bucket: events.BucketPareto, Description: "Pareto fronts: key front (latest study) and front.<study>", History: 20, Replicas: r, Storage: jetstream.FileStorage},
		{Bucket: events.BucketStudies, Description: "study specs and status", History: 10, Replicas: r, Storage: jetstream.FileStorage},
		{Bucket: events.BucketCanonical, Description: "validator dedup: <study>.<incarnation>.<canonical hash> -> first trial", History: 1, Replicas: r, Storage: jetstream.FileStorage},
		{Bucket: events.BucketFleet, Description: "live runners and their GPUs", History: 1, TTL: ttl, Replicas: r, Storage: jetstream.FileStorage},
		{Bucket: events.BucketLeases, Description: "trial, study-owner and reporter leases; stop requests", History: 1, TTL: leaseTTL, Replicas: r, Storage: jetstream.FileStorage},
	}
}

// EnsureTopology creates or updates every stream and bucket. It is idempotent
// and safe to call from every service at start.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if err := waitJetStream(ctx, js); err != nil {
		return err
	}
	for _, sc := range StreamConfigs(t) {
		err := RetryTimeouts(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range KVConfigs(t) {
		err := RetryTimeouts(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateKeyValue(ctx, kc)
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure KV bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// retryTimeouts retries op while it times out, for up to a minute: on a fresh
// cluster, creating replicated streams from several services at once can
// outlast JetStream's API timeout while the RAFT groups form.
func RetryTimeouts(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := op(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// waitJetStream waits until JetStream answers: it can lag the listener at start
// and during a cluster's leader election.
func waitJetStream(ctx context.Context, js jetstream.JetStream) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := js.AccountInfo(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("JetStream not available: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// KV opens an sgtune bucket (EnsureTopology must have run).
func KV(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// EnsureConsumer creates or updates the durable consumer cfg on stream,
// retrying timeouts (RetryTimeouts): every service of a fresh cluster
// creates its consumers while the RAFT groups form, and a runner that gave
// up there failed a `compose up --wait`.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := RetryTimeouts(ctx, func(ctx context.Context) (err error) {
		c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s/%s: %w", stream, cfg.Durable, err)
	}
	return c, nil
}
