package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
)

// DefaultLeaseTTL is how long a lease lives after its last refresh.
const DefaultLeaseTTL = 30 * time.Second

// ErrLeaseHeld is returned (inside a *HeldError) when a lease belongs to
// someone else.
var ErrLeaseHeld = errors.New("lease held")

// ErrLeaseLost is returned by Renew when the lease was taken over.
var ErrLeaseLost = errors.New("lease lost")

// HeldError says who holds a lease that could not be acquired.
type HeldError struct {
	Key      string
	Current  events.Lease
	Revision uint64
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: %s is held by %s %s (instance %s on %s, renewed %s)", ErrLeaseHeld, e.Key,
		e.Current.Kind, e.Current.Holder, e.Current.Instance, e.Current.Host, e.Current.RenewedAt.Format(time.RFC3339))
}

func (e *HeldError) Unwrap() error { return ErrLeaseHeld }

// Leases is the lease bucket (events.BucketLeases): compare-and-swap claims
// that expire when their holder stops renewing them. It is safe for
// concurrent use.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenLeases opens the lease bucket (EnsureTopology must have run) and reads its TTL.
func OpenLeases(ctx context.Context, js jetstream.JetStream) (*Leases, error) {
	kv, err := KV(ctx, js, events.BucketLeases)
	if err != nil {
		return nil, err
	}
	ttl := DefaultLeaseTTL
	if st, err := kv.Status(ctx); err == nil && st.TTL() > 0 {
		ttl = st.TTL()
	}
	return &Leases{kv: kv, ttl: ttl}, nil
}

// TTL is how long a lease lives without a renewal; renew well within it
// (a third is the rule).
func (l *Leases) TTL() time.Duration { return l.ttl }

// KV is the underlying bucket (watching stop requests).
func (l *Leases) KV() jetstream.KeyValue { return l.kv }

// Acquire creates key holding v. When the key exists it returns a
// *HeldError naming the holder, unless the stored lease carries v's token
// (our own Create whose reply was lost), which counts as acquired.
func (l *Leases) Acquire(ctx context.Context, key string, v events.Lease) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode lease %s: %w", key, err)
	}
	rev, err := l.kv.Create(ctx, key, data)
	if err == nil {
		return rev, nil
	}
	if !isRevisionConflict(err) {
		return 0, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	cur, crev, gerr := l.Get(ctx, key)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		// Expired between Create and Get: try once more.
		if rev, err := l.kv.Create(ctx, key, data); err == nil {
			return rev, nil
		}
		return 0, fmt.Errorf("acquire lease %s: %w", key, err)
	case gerr != nil:
		return 0, gerr
	case cur.Token != "" && cur.Token == v.Token:
		return crev, nil
	}
	return 0, &HeldError{Key: key, Current: cur, Revision: crev}
}

// TakeOver replaces the lease at revision rev (a stale one) with v. It
// returns a *HeldError when someone else changed it first.
func (l *Leases) TakeOver(ctx context.Context, key string, v events.Lease, rev uint64) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode lease %s: %w", key, err)
	}
	nrev, err := l.kv.Update(ctx, key, data, rev)
	if err == nil {
		return nrev, nil
	}
	if !isRevisionConflict(err) {
		return 0, fmt.Errorf("take over lease %s: %w", key, err)
	}
	return l.Acquire(ctx, key, v) // expired meanwhile (Create works) or held (HeldError)
}

// Renew refreshes the lease v held at revision rev and returns the new
// revision. A lease that expired (its holder could not reach NATS for a
// TTL) is taken again if nobody else took it. ErrLeaseLost (wrapped) means
// someone else holds it now: stop the work it covers.
func (l *Leases) Renew(ctx context.Context, key string, v events.Lease, rev uint64) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode lease %s: %w", key, err)
	}
	nrev, err := l.kv.Update(ctx, key, data, rev)
	if err == nil {
		return nrev, nil
	}
	if !isRevisionConflict(err) {
		return rev, fmt.Errorf("renew lease %s: %w", key, err)
	}
	nrev, err = l.Acquire(ctx, key, v)
	var held *HeldError
	if errors.As(err, &held) {
		return rev, fmt.Errorf("%w: %s", ErrLeaseLost, held.Error())
	}
	return nrev, err
}

// Release deletes the lease if it is still at revision rev (ours).
func (l *Leases) Release(ctx context.Context, key string, rev uint64) error {
	err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if err != nil && !isRevisionConflict(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("release lease %s: %w", key, err)
	}
	return nil
}

// Get reads a lease; a missing or released one wraps jetstream.ErrKeyNotFound.
func (l *Leases) Get(ctx context.Context, key string) (events.Lease, uint64, error) {
	e, err := l.kv.Get(ctx, key)
	if err != nil {
		return events.Lease{}, 0, fmt.Errorf("read lease %s: %w", key, err)
	}
	var v events.Lease
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return events.Lease{}, e.Revision(), fmt.Errorf("decode lease %s: %w", key, err)
	}
	return v, e.Revision(), nil
}

// List returns the leases whose keys match pattern (e.g. events.ReporterKeysAll).
func (l *Leases) List(ctx context.Context, pattern string) ([]events.Lease, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, pattern)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list leases %s: %w", pattern, err)
	}
	defer func() { _ = lister.Stop() }()
	var out []events.Lease
	for key := range lister.Keys() {
		v, _, err := l.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// HolderLive reports whether the holder of lease v is alive: a runner's
// lease is live while the runner's fleet entry exists with the same
// instance (a runner restarted under the same id has another, so its old
// leases are stale at once); any other lease is live while it exists, which
// the caller has just seen.
func HolderLive(ctx context.Context, js jetstream.JetStream, v events.Lease) (bool, error) {
	if v.Kind != events.LeaseRunner {
		return true, nil
	}
	kv, err := KV(ctx, js, events.BucketFleet)
	if err != nil {
		return false, err
	}
	st, _, err := GetJSON[events.RunnerStatus](ctx, kv, v.Holder)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.Instance == v.Instance, nil
}
