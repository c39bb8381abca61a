package prefetch

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Retry bounds of a model that could not be fetched: the first retry after
// RetryMin, doubling up to RetryMax (the network or a token may come back).
const (
	DefaultRetryMin = 30 * time.Second
	DefaultRetryMax = 10 * time.Minute
)

// Gate keeps the models of the running studies present and says whether the
// runner may claim trials: only once every one of them is on the host. It
// fetches one model at a time, in its Run loop; a model that could not be
// fetched is retried with backoff, and the runner stays not ready with the
// reason meanwhile. It is safe for concurrent use.
type Gate struct {
	p        *Prefetcher
	log      zerolog.Logger
	retryMin time.Duration
	retryMax time.Duration
	now      func() time.Time

	mu     sync.Mutex
	synced bool // Want was called: the studies were read once
	wanted map[Model]bool
	extra  map[Model]bool // models trials asked for (Ensure) before Want named them
	states map[Model]*modelState
	wake   chan struct{}
}

type modelState struct {
	ready   bool
	err     error
	retryAt time.Time
	backoff time.Duration
	busy    bool
}

// GateConfig tunes a Gate; zero values take the defaults.
type GateConfig struct {
	RetryMin, RetryMax time.Duration
	Logger             zerolog.Logger
}

// NewGate returns a gate over p. Call Run to fetch, Want to name the models.
func NewGate(p *Prefetcher, cfg GateConfig) *Gate {
	if p == nil {
		panic("prefetch: NewGate needs a Prefetcher")
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	return &Gate{p: p, log: cfg.Logger, retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, now: time.Now,
		wanted: map[Model]bool{}, extra: map[Model]bool{}, states: map[Model]*modelState{}, wake: make(chan struct{}, 1)}
}

// Want names the models of the running studies (it replaces the previous
// list); new ones are fetched by Run.
func (g *Gate) Want(models []Model) {
	g.mu.Lock()
	g.synced = true
	g.wanted = map[Model]bool{}
	for _, m := range models {
		if m.Path != "" {
			g.wanted[m] = true
		}
	}
	g.mu.Unlock()
	g.signal()
}

// Ready reports whether every wanted model is present; when not, the reason
// names the first one that is not and why.
func (g *Gate) Ready() (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.synced {
		return false, "reading the running studies' models"
	}
	for _, m := range g.modelsLocked() {
		st := g.states[m]
		switch {
		case st == nil || (!st.ready && st.err == nil):
			return false, fmt.Sprintf("fetching model %s into the local cache", m)
		case st.err != nil:
			return false, fmt.Sprintf("model %s is not on this host: %v (retrying %s)", m, st.err, retryWhen(st.retryAt, g.now()))
		}
	}
	return true, ""
}

func retryWhen(at, now time.Time) string {
	if d := at.Sub(now); d > 0 {
		return "in " + d.Round(time.Second).String()
	}
	return "now"
}

// modelsLocked lists the wanted and extra models in a stable order.
func (g *Gate) modelsLocked() []Model {
	out := make([]Model, 0, len(g.wanted)+len(g.extra))
	for m := range g.wanted {
		out = append(out, m)
	}
	for m := range g.extra {
		if !g.wanted[m] {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Ensure makes m present for a trial about to launch (a study Want has not
// named yet): it joins the gate's models, so a failure turns the runner not
// ready instead of failing trial after trial.
func (g *Gate) Ensure(ctx context.Context, m Model) error {
	g.mu.Lock()
	if st := g.states[m]; st != nil && st.ready {
		g.mu.Unlock()
		return nil
	}
	g.extra[m] = true
	g.mu.Unlock()
	err := g.p.Ensure(ctx, m)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	g.settle(m, err)
	return err
}

func (g *Gate) settle(m Model, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.states[m]
	if st == nil {
		st = &modelState{}
		g.states[m] = st
	}
	st.busy = false
	if err == nil {
		st.ready, st.err, st.backoff = true, nil, 0
		return
	}
	st.ready, st.err = false, err
	if st.backoff == 0 {
		st.backoff = g.retryMin
	} else {
		st.backoff = min(2*st.backoff, g.retryMax)
	}
	st.retryAt = g.now().Add(st.backoff)
}

func (g *Gate) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Run fetches the wanted models, one at a time, until ctx is done.
func (g *Gate) Run(ctx context.Context) {
	for {
		m, wait, ok := g.next()
		if ok {
			err := g.p.Ensure(ctx, m)
			if ctx.Err() != nil {
				return
			}
			g.settle(m, err)
			if err != nil {
				g.log.Error().Err(err).Str("model", m.String()).Msg("the model is not on this host: not claiming trials until it is")
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-g.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// next picks a model to fetch now, or says how long to wait for one.
func (g *Gate) next() (Model, time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	wait := time.Hour
	for _, m := range g.modelsLocked() {
		st := g.states[m]
		if st == nil {
			st = &modelState{}
			g.states[m] = st
		}
		switch {
		case st.ready || st.busy:
		case st.err == nil || !now.Before(st.retryAt):
			st.busy = true
			return m, 0, true
		default:
			wait = min(wait, st.retryAt.Sub(now))
		}
	}
	return Model{}, wait, false
}

// Models lists the wanted models that are present, for logs and tests.
func (g *Gate) Models() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, m := range g.modelsLocked() {
		if st := g.states[m]; st != nil && st.ready {
			out = append(out, m.String())
		}
	}
	return slices.Clip(out)
}
