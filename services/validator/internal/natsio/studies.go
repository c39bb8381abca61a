package natsio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// Study is a study's spec as the validator uses it.
type Study struct {
	Spec *study.Spec
	// Incarnation distinguishes a study from an earlier study of the same name
	// (StudyState.StartedAt in Unix nanoseconds, "0" when unset). Dedup claims
	// are scoped by it, so a purged and restarted study does not inherit the
	// old study's claims.
	Incarnation string
}

// Studies reads study specs from the sgtune_studies bucket. It reads the
// entry for every candidate (the status changes often) but decodes and
// validates a spec only when its bytes change. It is safe for concurrent use.
type Studies struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]cachedStudy
}

type cachedStudy struct {
	revision uint64
	raw      []byte
	study    Study
}

// NewStudies returns a reader over the studies bucket.
func NewStudies(kv jetstream.KeyValue) *Studies {
	if kv == nil {
		panic("natsio: NewStudies needs a bucket")
	}
	return &Studies{kv: kv, cache: map[string]cachedStudy{}}
}

// Load returns the study's spec. Errors: ErrStudyNotFound (transient),
// ErrBadSpec (permanent), or a wrapped NATS error (transient).
func (s *Studies) Load(ctx context.Context, name string) (Study, error) {
	e, err := s.kv.Get(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Study{}, fmt.Errorf("%w: %s", ErrStudyNotFound, name)
		}
		return Study{}, fmt.Errorf("read study %s: %w", name, err)
	}
	s.mu.Lock()
	c, ok := s.cache[name]
	s.mu.Unlock()
	if ok && c.revision == e.Revision() {
		return c.study, nil
	}
	var st events.StudyState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return Study{}, fmt.Errorf("%w: %s: %v", ErrBadSpec, name, err)
	}
	inc := "0"
	if !st.StartedAt.IsZero() {
		inc = strconv.FormatInt(st.StartedAt.UnixNano(), 10)
	}
	if !ok || !bytes.Equal(c.raw, st.Spec) || c.study.Incarnation != inc {
		spec, err := study.FromJSON(st.Spec)
		if err != nil {
			return Study{}, fmt.Errorf("%w: %s: %v", ErrBadSpec, name, err)
		}
		c = cachedStudy{raw: st.Spec, study: Study{Spec: &spec, Incarnation: inc}}
	}
	c.revision = e.Revision()
	s.mu.Lock()
	s.cache[name] = c
	s.mu.Unlock()
	return c.study, nil
}
