// Package memstore is an in-memory app.FrontStore for tests and single-process
// use. It stores encoded documents, so values round-trip exactly as in KV.
package memstore

import (
	"context"
	"errors"
	"sync"

	"github.com/sgtune/sgtune/services/reporter/internal/app"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// Store is an in-memory front store, safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	data   map[string][]byte
	writes int
}

var _ app.FrontStore = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{data: map[string][]byte{}} }

// Update implements app.FrontStore.
func (s *Store) Update(ctx context.Context, key string, fn func(*front.FrontDoc) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur front.FrontDoc
	if b, ok := s.data[key]; ok {
		d, err := front.DecodeFront(b)
		if err != nil {
			return err
		}
		cur = d
	}
	if err := fn(&cur); err != nil {
		if errors.Is(err, app.ErrNoChange) {
			return nil
		}
		return err
	}
	b, err := front.EncodeFront(cur)
	if err != nil {
		return err
	}
	s.data[key] = b
	s.writes++
	return nil
}

// Get returns the stored bytes of key.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.data[key]
	return b, ok
}

// Writes counts the writes so far.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
