package natsio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// One sampler per study: the sampler that proposes a study's trials holds
// its ownership lease (KV sgtune_leases/study.<study>, compare-and-swap,
// renewed every third of the lease TTL). Another sampler of the same study
// stands by: it takes the study over only when the lease expires (its owner
// died), and returns when the owner completes the study.

// ErrOwnershipLost is the cause of an owner's context when another sampler
// took the study over (this one could not renew its lease for a TTL).
var ErrOwnershipLost = errors.New("study ownership lost to another sampler")

// ErrCompletedElsewhere is returned by Own when the study was completed by
// its owner while this sampler stood by.
var ErrCompletedElsewhere = errors.New("study completed by its owner")

// Ownership is this process's hold on a study.
type Ownership struct {
	leases *natsx.Leases
	key    string
	lease  events.Lease
	rev    uint64
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// OwnOptions tune Own.
type OwnOptions struct {
	// Instance names this process (natsx.Instance() when empty).
	Instance string
	// Poll is how often a standing-by sampler looks again (1 s).
	Poll time.Duration
	// OnStandby is called once when the study is owned by someone else.
	OnStandby func(holder events.Lease)
	Logger    zerolog.Logger
}

// Own takes the study's ownership lease, standing by while another live
// sampler holds it. It returns the ownership and a context derived from
// ctx that is cancelled (cause ErrOwnershipLost) if the lease is lost; or
// ErrCompletedElsewhere when the owner completed the study meanwhile.
func (b *Bus) Own(ctx context.Context, opts OwnOptions) (*Ownership, context.Context, error) {
	if opts.Instance == "" {
		opts.Instance = natsx.Instance()
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	leases, err := natsx.OpenLeases(ctx, b.js)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now().UTC()
	lease := events.Lease{
		Kind: events.LeaseSampler, Holder: "sampler", Instance: opts.Instance, Host: host, PID: os.Getpid(),
		Token: opts.Instance + ":" + natsx.RandomSuffix(), Study: b.study, AcquiredAt: now, RenewedAt: now,
	}
	key := events.StudyLeaseKey(b.study)
	var standingBy bool
	var stateRev uint64 // the study entry's revision when this sampler began standing by
	for {
		if standingBy {
			if st, exists, rev := b.stateWithRevision(ctx); exists && rev != stateRev && st.Status == events.StudyComplete {
				return nil, nil, ErrCompletedElsewhere
			}
		}
		rev, err := leases.Acquire(ctx, key, lease)
		var held *natsx.HeldError
		switch {
		case err == nil:
			o := &Ownership{leases: leases, key: key, lease: lease, rev: rev, done: make(chan struct{})}
			octx, cancel := context.WithCancelCause(ctx)
			o.cancel = cancel
			go o.keep(octx, opts.Logger)
			return o, octx, nil
		case errors.As(err, &held):
			if !standingBy {
				standingBy = true
				stateRev = b.stateRevision(ctx)
				if opts.OnStandby != nil {
					opts.OnStandby(held.Current)
				}
				opts.Logger.Info().Str("owner", held.Current.Instance).Str("owner_host", held.Current.Host).
					Msg("the study is owned by another sampler: standing by until it completes or its owner is gone")
			}
		default:
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			opts.Logger.Warn().Err(err).Msg("cannot read the study's ownership lease; retrying")
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(opts.Poll):
		}
	}
}

func (b *Bus) stateRevision(ctx context.Context) uint64 {
	_, _, rev := b.stateWithRevision(ctx)
	return rev
}

func (b *Bus) stateWithRevision(ctx context.Context) (events.StudyState, bool, uint64) {
	st, rev, err := natsx.GetJSON[events.StudyState](ctx, b.states, b.study)
	if err != nil {
		return events.StudyState{}, false, 0
	}
	return st, true, rev
}

// keep renews the lease every third of its TTL until ctx is done.
func (o *Ownership) keep(ctx context.Context, log zerolog.Logger) {
	defer close(o.done)
	t := time.NewTicker(o.leases.TTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		o.lease.RenewedAt = time.Now().UTC()
		rev, err := o.leases.Renew(rctx, o.key, o.lease, o.rev)
		cancel()
		switch {
		case err == nil:
			o.rev = rev
		case errors.Is(err, natsx.ErrLeaseLost):
			log.Error().Err(err).Msg("another sampler took the study over: stopping this one")
			o.cancel(fmt.Errorf("%w: %w", ErrOwnershipLost, err))
			return
		case ctx.Err() == nil:
			log.Warn().Err(err).Msg("could not renew the study's ownership lease")
		}
	}
}

// Release gives the study up (after it completed, or at shutdown) so a
// standing-by sampler need not wait for the lease to expire.
func (o *Ownership) Release() {
	o.cancel(nil)
	<-o.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.leases.Release(ctx, o.key, o.rev) // else it expires
}

// StudyOwner reads the study's owner lease (events.Lease); ok is false when
// no sampler owns it. sgtune up uses it to decide whether to join.
func StudyOwner(ctx context.Context, js jetstream.JetStream, study string) (events.Lease, bool, error) {
	leases, err := natsx.OpenLeases(ctx, js)
	if err != nil {
		return events.Lease{}, false, err
	}
	l, _, err := leases.Get(ctx, events.StudyLeaseKey(study))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.Lease{}, false, nil
	}
	if err != nil {
		return events.Lease{}, false, err
	}
	return l, true, nil
}
