package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Envelope is embedded at the top of every payload.
type Envelope struct {
	// ID identifies this event; it is also the Nats-Msg-Id it was published with.
	ID string `json:"id"`
	// Type names the payload (TypeCandidateProposed, ...).
	Type string `json:"type"`
	// Version is the payload's schema version (SchemaVersion when written by this code).
	Version int `json:"version"`
	// OccurredAt is when the producer created the event.
	OccurredAt time.Time `json:"occurred_at"`
	// CorrelationID ties the events of one trial together: "<study>:<trial>".
	CorrelationID string `json:"correlation_id,omitempty"`
	// Study and Trial name the study and trial number the event is about.
	Study string `json:"study"`
	Trial int    `json:"trial"`
	// Incarnation identifies one run of a study name (its start time, base 36):
	// a study purged with --no-load and started again is a new incarnation, so
	// its events get new ids even inside JetStream's duplicate window, which
	// remembers the ids of purged messages. Producers copy it from the event
	// they react to.
	Incarnation string `json:"incarnation,omitempty"`
}

// NewEnvelope fills an envelope for an event of type t about one trial.
func NewEnvelope(t, study string, trial int, now time.Time) Envelope {
	return Envelope{
		ID:            MsgID(t, study, trial),
		Type:          t,
		Version:       SchemaVersion,
		OccurredAt:    now.UTC(),
		CorrelationID: fmt.Sprintf("%s:%d", study, trial),
		Study:         study,
		Trial:         trial,
	}
}

// In returns the envelope of the given study incarnation: Incarnation is set
// and the id made unique to it.
func (e Envelope) In(incarnation string) Envelope {
	if incarnation == "" || e.Incarnation == incarnation {
		return e
	}
	e.Incarnation = incarnation
	e.ID = e.ID + "@" + incarnation
	return e
}

// IncarnationOf names the incarnation of a study started at t.
func IncarnationOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 36)
}

// Head returns the envelope itself; every payload has it through embedding.
func (e Envelope) Head() Envelope { return e }

// Event is implemented by every payload.
type Event interface{ Head() Envelope }

// PeekEnvelope decodes only the envelope of a message, to dispatch on its type.
func PeekEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Type == "" {
		return Envelope{}, fmt.Errorf("%w: no type", ErrMalformed)
	}
	return e, nil
}

// Decode unmarshals data into a payload of type T and checks that its envelope
// names want as its type and carries a study.
func Decode[T Event](data []byte, want string) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: %s: %v", ErrMalformed, want, err)
	}
	h := v.Head()
	if h.Type != want {
		return v, fmt.Errorf("%w: got %q, want %q", ErrUnknownType, h.Type, want)
	}
	if h.Study == "" {
		return v, fmt.Errorf("%w: %s without a study", ErrMalformed, want)
	}
	if h.Trial < 0 {
		return v, fmt.Errorf("%w: %s with negative trial %d", ErrMalformed, want, h.Trial)
	}
	return v, nil
}
