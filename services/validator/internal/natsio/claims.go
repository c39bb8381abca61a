package natsio

import (
	"context"
	"errors"
	"fmt"
	"github.com/sgtune/sgtune/pkg/events"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/services/validator/internal/rules"
)

// BucketCanonical is the KV bucket of dedup claims: key
// "<study>.<incarnation>.<canonical hash>", value the trial number that first
// ran that canonical config. (Proposed for pkg/events as BucketCanonical.)
const BucketCanonical = events.BucketCanonical

// Claims remembers which trial first ran each canonical config of a study.
// Implementations are safe for concurrent use and across processes where
// they say so.
type Claims interface {
	// Claim records trial as the first to run hash in study (incarnation inc)
	// unless another trial did, and returns the owner. Claiming again with the
	// owner returns the owner (a redelivery is not a duplicate).
	Claim(ctx context.Context, study, inc, hash string, trial int) (owner int, err error)
}

// KVClaims keeps claims in the sgtune_canonical bucket: KV Create is atomic,
// so the first of several validator replicas wins, and claims survive restarts.
type KVClaims struct {
	kv jetstream.KeyValue
}

var _ Claims = (*KVClaims)(nil)

// KVClaimsConfig is the bucket's configuration.
func KVClaimsConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      BucketCanonical,
		Description: "validator dedup: <study>.<incarnation>.<canonical hash> -> first trial",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// EnsureKVClaims creates or updates the bucket and returns the store.
func EnsureKVClaims(ctx context.Context, js jetstream.JetStream, replicas int) (*KVClaims, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, KVClaimsConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("ensure KV bucket %s: %w", BucketCanonical, err)
	}
	return &KVClaims{kv: kv}, nil
}

// Claim implements Claims with Create (first writer wins) and Get on conflict.
func (c *KVClaims) Claim(ctx context.Context, study, inc, hash string, trial int) (int, error) {
	key := study + "." + inc + "." + hash
	if _, err := c.kv.Create(ctx, key, []byte(strconv.Itoa(trial))); err == nil {
		return trial, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("claim %s/%s: %w", BucketCanonical, key, err)
	}
	e, err := c.kv.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read claim %s/%s: %w", BucketCanonical, key, err)
	}
	owner, err := strconv.Atoi(string(e.Value()))
	if err != nil {
		return 0, fmt.Errorf("read claim %s/%s: bad value %q", BucketCanonical, key, e.Value())
	}
	return owner, nil
}

// MemoryClaims keeps claims in this process only (tests, `sgtune validate`).
type MemoryClaims struct {
	mu      sync.Mutex
	studies map[string]*rules.Dedup
}

var _ Claims = (*MemoryClaims)(nil)

// NewMemoryClaims returns an empty in-memory store.
func NewMemoryClaims() *MemoryClaims { return &MemoryClaims{studies: map[string]*rules.Dedup{}} }

// Claim implements Claims.
func (m *MemoryClaims) Claim(_ context.Context, study, inc, hash string, trial int) (int, error) {
	m.mu.Lock()
	d, ok := m.studies[study+"."+inc]
	if !ok {
		d = rules.NewDedup()
		m.studies[study+"."+inc] = d
	}
	m.mu.Unlock()
	owner, _ := d.Claim(hash, trial)
	return owner, nil
}
