package natsio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// Trial leases (KV sgtune_leases/trial.<study>.<trial>): a runner takes the
// lease of a trial before it launches anything, renews it with every
// InProgress heartbeat, and releases it once the trial's message is
// settled. A delivery of a trial whose lease another live runner holds (or
// that this runner is running already: a redelivery after NATS lost the
// consumer's state) is deferred, not run: its holder acks it when done (a
// late ack is honoured), and if the holder dies its lease expires and the
// next delivery runs the trial. A lease is stale, and taken over at once,
// when its holder's fleet entry is gone or belongs to another process
// instance, when this runner has seen it unrenewed for 2.5 renewal periods
// (every runner renews every min(AckWait, lease TTL)/3: AckWait is
// fleet-wide, the TTL bucket-wide), or when it is of another incarnation of
// the study. A deferred delivery comes back after one renewal period, so a
// dead holder's trial runs again within about three.
//
// Stop requests (sgtune_leases/stop.<study>.<trial>, events.StopRequest)
// cancel a running trial by its id: the runner watches stop.> and cancels
// the trial's context with a *StopError cause.

// errLeaseLost is the cancellation cause of a trial whose lease another
// runner took over (this one could not renew it for a whole TTL).
var errLeaseLost = errors.New("trial lease lost to another runner")

// StopError is the cancellation cause of a trial stopped by a StopRequest.
type StopError struct{ Request events.StopRequest }

func (e *StopError) Error() string {
	return fmt.Sprintf("trial %s/%d stopped by %s: %s", e.Request.Study, e.Request.Trial, e.Request.By, e.Request.Reason)
}

// activeTrial is a trial this runner holds the lease of.
type activeTrial struct {
	key    string
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	lease events.Lease
	rev   uint64
}

// seenLeases remembers, per lease key, the revision of a lease held
// elsewhere and when this runner first saw it, to tell a holder that stopped
// renewing (it died) without comparing clocks across hosts.
type seenLeases struct {
	mu sync.Mutex
	m  map[string]seenLease
}

type seenLease struct {
	rev uint64
	at  time.Time
}

// unrenewedFor returns how long the lease at key has stayed at revision rev.
func (s *seenLeases) unrenewedFor(key string, rev uint64, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]seenLease{}
	}
	if prev, ok := s.m[key]; ok && prev.rev == rev {
		return now.Sub(prev.at)
	}
	for k, v := range s.m { // forget old observations
		if now.Sub(v.at) > time.Hour {
			delete(s.m, k)
		}
	}
	s.m[key] = seenLease{rev: rev, at: now}
	return 0
}

func (s *seenLeases) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// activeTrials are the trials this runner runs, by lease key.
type activeTrials struct {
	mu sync.Mutex
	m  map[string]*activeTrial
}

func (a *activeTrials) get(key string) *activeTrial {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[key]
}

func (a *activeTrials) put(t *activeTrial) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*activeTrial{}
	}
	a.m[t.key] = t
}

func (a *activeTrials) remove(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, key)
}

// takeLease takes the lease of trial q for this runner. It returns the
// verdict for the delivery when the trial must not run here now: Defer
// when a live runner (this one included) holds it, a transient error when
// the lease cannot be read or written.
func (r *Runner) takeLease(ctx context.Context, q events.TrialQueued, meta natsx.Meta, gpus []int, log zerolog.Logger) (*activeTrial, error) {
	key := events.TrialLeaseKey(q.Study, q.Trial)
	now := time.Now().UTC()
	lease := events.Lease{
		Kind: events.LeaseRunner, Holder: r.cfg.RunnerID, Instance: r.cfg.Instance, Host: r.cfg.Host, PID: os.Getpid(),
		Token: r.cfg.Instance + ":" + strconv.FormatUint(meta.StreamSeq, 10) + ":" + strconv.FormatUint(meta.Delivered, 10) + ":" + natsx.RandomSuffix(),
		Study: q.Study, Trial: q.Trial, Incarnation: q.Incarnation, GPUs: gpus, AcquiredAt: now, RenewedAt: now,
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rev, err := r.leases.Acquire(lctx, key, lease)
	var held *natsx.HeldError
	switch {
	case err == nil:
	case errors.As(err, &held):
		stale, why, err := r.leaseStale(lctx, key, held.Current, held.Revision, q)
		if err != nil {
			return nil, fmt.Errorf("check the holder of %s: %w", key, err)
		}
		if !stale {
			return nil, natsx.Defer(fmt.Errorf("trial is running on %s %s (instance %s, host %s, GPUs %v) and is not run again",
				held.Current.Kind, held.Current.Holder, held.Current.Instance, held.Current.Host, held.Current.GPUs), r.renewEvery())
		}
		if rev, err = r.leases.TakeOver(lctx, key, lease, held.Revision); err != nil {
			if errors.As(err, &held) {
				return nil, natsx.Defer(fmt.Errorf("trial was just taken by %s %s", held.Current.Kind, held.Current.Holder), r.renewEvery())
			}
			return nil, err
		}
		log.Warn().Str("previous_holder", held.Current.Holder).Str("previous_instance", held.Current.Instance).Str("why", why).
			Msg("took over the stale lease of a trial")
	default:
		return nil, err
	}
	r.seen.forget(key)
	return &activeTrial{key: key, lease: lease, rev: rev}, nil
}

// renewEvery is how often every runner renews its trial leases (with the
// InProgress heartbeat).
func (r *Runner) renewEvery() time.Duration { return min(r.cfg.AckWait, r.leases.TTL()) / 3 }

// leaseStale says whether a lease held on trial q (at revision rev) may be
// taken over, and why.
func (r *Runner) leaseStale(ctx context.Context, key string, cur events.Lease, rev uint64, q events.TrialQueued) (bool, string, error) {
	switch {
	case cur.Incarnation != q.Incarnation:
		return true, "the lease is of another incarnation of the study", nil
	case cur.Kind == events.LeaseRunner && cur.Instance == r.cfg.Instance:
		if r.active.get(key) != nil {
			return false, "", nil // running here already: a redelivery
		}
		return true, "this runner's own lease of a trial it no longer runs", nil
	}
	if d := r.seen.unrenewedFor(key, rev, time.Now()); d >= 5*r.renewEvery()/2 {
		return true, fmt.Sprintf("not renewed for %s", d.Round(time.Millisecond)), nil
	}
	live, err := natsx.HolderLive(ctx, r.js, cur)
	if err != nil || live {
		return false, "", err
	}
	return true, "its runner is gone (no fleet entry of that instance)", nil
}

// renewLease refreshes t's lease; it cancels the trial when another runner
// took the lease over.
func (r *Runner) renewLease(ctx context.Context, t *activeTrial, log zerolog.Logger) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lease.RenewedAt = time.Now().UTC()
	rev, err := r.leases.Renew(lctx, t.key, t.lease, t.rev)
	switch {
	case err == nil:
		t.rev = rev
	case errors.Is(err, natsx.ErrLeaseLost):
		log.Error().Err(err).Msg("the trial's lease was taken over by another runner: stopping this copy")
		t.cancel(errLeaseLost)
	default:
		log.Warn().Err(err).Msg("could not renew the trial's lease")
	}
}

// releaseLease deletes t's lease (if still ours).
func (r *Runner) releaseLease(ctx context.Context, t *activeTrial, log zerolog.Logger) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	t.mu.Lock()
	rev := t.rev
	t.mu.Unlock()
	if err := r.leases.Release(lctx, t.key, rev); err != nil {
		log.Warn().Err(err).Msg("could not release the trial's lease; it expires")
	}
}

// watchStops cancels running trials named by stop requests until ctx is done.
func (r *Runner) watchStops(ctx context.Context) {
	w, err := r.leases.KV().Watch(ctx, events.StopKeysAll)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error().Err(err).Msg("stop requests are not watched")
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			req, err := decodeStop(e.Value())
			if err != nil {
				r.log.Warn().Err(err).Str("key", e.Key()).Msg("undecodable stop request ignored")
				continue
			}
			if t := r.active.get(events.TrialLeaseKey(req.Study, req.Trial)); t != nil {
				r.log.Info().Str("study", req.Study).Int("trial", req.Trial).Str("reason", req.Reason).Msg("stop requested: stopping the trial")
				t.cancel(&StopError{Request: req})
			}
		}
	}
}

// stopRequested reads a stop request for trial q made before it started.
func (r *Runner) stopRequested(ctx context.Context, q events.TrialQueued) (*events.StopRequest, error) {
	e, err := r.leases.KV().Get(ctx, events.StopKey(q.Study, q.Trial))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stop request: %w", err)
	}
	req, err := decodeStop(e.Value())
	if err != nil {
		return nil, nil // an undecodable request stops nothing
	}
	return &req, nil
}
