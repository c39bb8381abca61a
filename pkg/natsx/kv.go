package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// casRetryLimit bounds how long UpdateJSON and UpdateRaw retry lost
// compare-and-swaps. It is a time, not a count: on a busy host one round
// trip takes tens of milliseconds and a writer among many can lose dozens
// of rounds in a row (41 of them, 32 writers of one key on 2 loaded cores),
// yet the key keeps moving; giving up then would drop a study-state or
// front write. Only a key rewritten without pause for this long fails.
const casRetryLimit = 30 * time.Second

// GetJSON reads and decodes key. A missing key returns an error wrapping
// jetstream.ErrKeyNotFound.
func GetJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if err != nil {
		return v, 0, fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
	}
	return v, e.Revision(), nil
}

// PutJSON writes v at key unconditionally.
func PutJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", kv.Bucket(), key, err)
	}
	if _, err := kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
	}
	return nil
}

// UpdateJSON applies fn to the current value of key (the zero value and
// exists=false when there is none) and writes the result with compare-and-swap,
// re-reading and retrying when another writer got there first. fn may run
// several times; returning ErrNoChange skips the write.
func UpdateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(cur *T, exists bool) error) (T, error) {
	var zero T
	deadline := time.Now().Add(casRetryLimit)
	for attempt := 0; ; attempt++ {
		var cur T
		var rev uint64
		exists := false
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return zero, fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
			}
			rev, exists = e.Revision(), true
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return zero, fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
		}
		if err := fn(&cur, exists); err != nil {
			if errors.Is(err, ErrNoChange) {
				return cur, nil
			}
			return zero, err
		}
		data, err := json.Marshal(cur)
		if err != nil {
			return zero, fmt.Errorf("encode %s/%s: %w", kv.Bucket(), key, err)
		}
		if exists {
			_, err = kv.Update(ctx, key, data, rev)
		} else {
			_, err = kv.Create(ctx, key, data)
		}
		if err == nil {
			return cur, nil
		}
		if !isRevisionConflict(err) {
			return zero, fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
		}
		if err := casBackoff(ctx, attempt, deadline); err != nil {
			return zero, fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
		}
	}
}

// UpdateRaw is UpdateJSON for values that are not JSON-encoded by natsx
// (the pareto front is written as compact ASCII JSON by the reporter):
// fn gets the current bytes (nil when absent) and returns the new bytes.
func UpdateRaw(ctx context.Context, kv jetstream.KeyValue, key string, fn func(cur []byte) ([]byte, error)) error {
	deadline := time.Now().Add(casRetryLimit)
	for attempt := 0; ; attempt++ {
		var cur []byte
		var rev uint64
		exists := false
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			cur, rev, exists = e.Value(), e.Revision(), true
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
		}
		next, err := fn(cur)
		if err != nil {
			if errors.Is(err, ErrNoChange) {
				return nil
			}
			return err
		}
		if exists {
			_, err = kv.Update(ctx, key, next, rev)
		} else {
			_, err = kv.Create(ctx, key, next)
		}
		if err == nil {
			return nil
		}
		if !isRevisionConflict(err) {
			return fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
		}
		if err := casBackoff(ctx, attempt, deadline); err != nil {
			return fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
		}
	}
}

// isRevisionConflict recognises a lost compare-and-swap: ErrKeyExists (10071 on
// one server), ErrKeyRevisionMismatch / 10164 on replicated buckets.
func isRevisionConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err)
}

// casBackoff waits a random moment after a lost compare-and-swap, growing
// with the attempt (at most ~64 ms, a loaded host's few round trips), so
// many writers of one key spread out instead of colliding again in
// lockstep. Past deadline it returns an error naming the attempts.
func casBackoff(ctx context.Context, attempt int, deadline time.Time) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("still conflicting after %d attempts in %s", attempt+1, casRetryLimit)
	}
	if attempt == 0 {
		return nil // the first conflict retries at once
	}
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
