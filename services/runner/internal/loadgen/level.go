package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// session is one benchmark against one server: its dataset, its
// connections (kept from level to level) and the bounds of the whole run.
type session struct {
	o        Options
	ds       Dataset
	b        *bench
	model    string
	ctx      context.Context // ended by the caller, the timeout or a stall
	cancel   context.CancelFunc
	timer    *time.Timer
	timedOut atomic.Bool
}

func newSession(ctx context.Context, o Options) (*session, error) {
	if o.Workload.NumPrompts <= 0 {
		return nil, fmt.Errorf("%w: num_prompts must be > 0", ErrBadWorkload)
	}
	ds, err := OpenDataset(o.Workload, o.Prompts)
	if err != nil {
		return nil, err
	}
	ep, err := newEndpoint(o.BaseURL, o.APIKey, o.TLS)
	if err != nil {
		return nil, err
	}
	s := &session{o: o, ds: ds, model: o.Model}
	if s.model == "" {
		s.model = "default"
	}
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	if o.Timeout > 0 {
		s.timer = time.AfterFunc(o.Timeout, func() { s.timedOut.Store(true); s.cancel() })
	}
	s.b = &bench{ep: ep, idle: idle, abort: s.cancel, probe: probePath(o.Workload.Backend == BackendOpenAI), burst: o.Burst, take: firstWaveTake}
	if o.firstWaveTake > 0 {
		s.b.take = o.firstWaveTake
	}
	return s, nil
}

func (s *session) close() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cancel()
	s.b.pool.closeAll()
}

// fail says why the session ended early, if it did.
func (s *session) fail() error {
	switch {
	case s.timedOut.Load():
		return fmt.Errorf("%w after %s", ErrTimeout, s.o.Timeout)
	case s.ctx.Err() != nil && s.b.stalled.Load():
		return fmt.Errorf("%w: a stream sent nothing for %s", ErrStalled, s.b.idle)
	case s.ctx.Err() != nil:
		if err := context.Cause(s.ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return context.Canceled
	}
	return nil
}

// levelSeed gives each level of a ladder its own prompts (the same shape,
// other token ids), so no level finds the previous one's in the server's
// prefix cache; level 0 keeps the workload's seed.
func levelSeed(seed int64, salt uint64) uint64 { return uint64(seed) + salt*0x9e3779b97f4a7c15 }

// level measures one load level: w's MaxConcurrency (closed loop) or
// RequestRate (open loop), with w's warm-up; salt varies the prompts. The
// first ramp requests are sent but not measured: they carry the level from
// an idle server to its steady state (a closed loop's first wave arrives
// all at once; an open loop's queue needs time to build).
func (s *session) level(w events.Workload, salt uint64, ramp int) (*Result, error) {
	seed := levelSeed(w.Seed, salt)
	prompts, err := s.ds.Prompts(w.NumPrompts+ramp, seed)
	if err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("%w: the dataset yields no prompts", ErrBadWorkload)
	}
	if len(prompts) < w.NumPrompts+ramp {
		ramp = min(ramp, len(prompts)/4) // a fixed-size dataset (a trace, the shared-prefix groups) keeps most of its prompts measured
	}
	measured, err := buildRequests(w, s.model, prompts, s.ds.Timed(), seed, false)
	if err != nil {
		return nil, err
	}
	if s.o.RequestIDPrefix != "" {
		setRequestIDs(measured, s.o.RequestIDPrefix)
	}
	warmPrompts, err := warmupPrompts(s.ds, prompts, max(w.WarmupRequests, 0), seed+1, vocabOf(w))
	if err != nil {
		return nil, err
	}
	warm, err := buildRequests(w, s.model, warmPrompts, false, seed+1, true)
	if err != nil {
		return nil, err
	}
	for _, reqs := range [][]request{measured, warm} {
		for i := range reqs {
			reqs[i].wire = s.b.ep.wire(http.MethodPost, reqs[i].path, reqs[i].body)
		}
	}
	conc := w.MaxConcurrency
	if conc <= 0 || conc > len(measured) {
		conc = len(measured)
	}
	b := s.b
	b.pool.trim(conc)
	if len(warm) > 0 {
		b.runAll(s.ctx, warm, min(conc, len(warm)))
		if err := s.fail(); err != nil {
			return nil, err
		}
	}
	// Every stream's connection is open before the clock starts.
	preopened := 0
	if !s.o.NoPreopen {
		if preopened, err = b.preopen(s.ctx, min(conc, MaxPreopen)); err != nil {
			if ferr := s.fail(); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("%w: %v", ErrAllFailed, err)
		}
	}
	slo := SLO{TTFT: msDur(w.SLOTTFTMs), TPOT: msDur(w.SLOTPOTMs), E2E: msDur(w.SLOE2EMs)}
	start := time.Now()
	b.cp = newCheckpointer(b, s.o, len(measured), slo)
	results := b.runAll(s.ctx, measured, conc)
	dur := time.Since(start)
	b.cp.stop()
	b.cp = nil
	if ramp > 0 {
		results, dur = steadyState(results[ramp:])
	}
	if err := s.fail(); err != nil {
		if errors.Is(err, ErrStalled) {
			return &Result{Requests: results, Duration: dur}, err
		}
		return nil, err
	}
	res := &Result{Requests: results, Duration: dur, Preopened: preopened}
	for i := range results {
		if results[i].NewConn {
			res.Dialed++
		}
	}
	res.Metrics, res.Units = Aggregate(results, dur, slo)
	if res.Metrics["completed"] == 0 {
		return res, fmt.Errorf("%w (%d requests; first error: %s)", ErrAllFailed, len(results), res.FirstError())
	}
	return res, nil
}

// steadyState returns the requests measured after a ramp and the time from
// the first one's start to the last one's end.
func steadyState(rs []RequestResult) ([]RequestResult, time.Duration) {
	var first, last time.Time
	for i := range rs {
		r := &rs[i]
		if r.Start.IsZero() {
			continue
		}
		if first.IsZero() || r.Start.Before(first) {
			first = r.Start
		}
		if end := r.Start.Add(r.E2E); end.After(last) {
			last = end
		}
	}
	return rs, last.Sub(first)
}
