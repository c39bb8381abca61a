package natsio

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// Announce keeps this reporter's presence lease (KV
// sgtune_leases/reporter.<instance>) until ctx is done, then removes it, so
// a joining `sgtune up` knows whether a reporter is live. Any number of
// reporters may run: the presence is only a hint.
func Announce(ctx context.Context, js jetstream.JetStream, instance string, log zerolog.Logger) {
	leases, err := natsx.OpenLeases(ctx, js)
	if err != nil {
		log.Warn().Err(err).Msg("reporter presence not announced")
		return
	}
	host, _ := os.Hostname()
	now := time.Now().UTC()
	key := events.ReporterLeaseKey(instance)
	l := events.Lease{Kind: events.LeaseReporter, Holder: "reporter", Instance: instance, Host: host, PID: os.Getpid(),
		Token: instance, AcquiredAt: now, RenewedAt: now}
	rev, err := leases.Acquire(ctx, key, l)
	if err != nil {
		log.Warn().Err(err).Msg("reporter presence not announced")
		return
	}
	t := time.NewTicker(leases.TTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = leases.Release(rctx, key, rev)
			return
		case <-t.C:
		}
		l.RenewedAt = time.Now().UTC()
		if r, err := leases.Renew(ctx, key, l, rev); err == nil {
			rev = r
		} else if ctx.Err() == nil {
			log.Debug().Err(err).Msg("reporter presence not renewed")
		}
	}
}

// LiveReporters counts the reporters whose presence lease is live.
func LiveReporters(ctx context.Context, js jetstream.JetStream) (int, error) {
	leases, err := natsx.OpenLeases(ctx, js)
	if err != nil {
		return 0, err
	}
	ls, err := leases.List(ctx, events.ReporterKeysAll)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, err
	}
	return len(ls), nil
}
