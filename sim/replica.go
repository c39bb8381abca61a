package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

// replica is one DP replica's scheduler process: it owns a model.Engine and
// plays its iterations in real time.
type replica struct {
	s      *server
	idx    int
	eng    *model.Engine
	in     chan *request
	aborts chan *request
	rng    *rand.Rand

	running, queued atomic.Int64
	kvUsed          atomic.Int64
	// promptTokens and cachedTokens sum the prompts prefilled so far and
	// the part the prefix cache served (sglang:cache_hit_rate).
	promptTokens, cachedTokens atomic.Int64
	// flush asks the scheduler to empty its prefix cache (/flush_cache); it
	// answers whether it did (only when idle).
	flush   chan chan bool
	genTput atomic.Uint64 // float64 bits, tokens/s over the last log interval
}

func newReplica(s *server, idx int) *replica {
	return &replica{
		s:      s,
		idx:    idx,
		eng:    model.NewEngine(s.plan, s.env.seed+uint64(idx)),
		in:     make(chan *request, 8192),
		aborts: make(chan *request, 8192),
		flush:  make(chan chan bool),
		rng:    rand.New(rand.NewPCG(s.env.seed, uint64(idx)+1)),
	}
}

func (r *replica) rank() string {
	if r.s.plan.Config.DP > 1 {
		return "DP" + itoa(r.idx) + " TP0"
	}
	return "TP0"
}

func (r *replica) admit(q *request) {
	if q.aborted.Load() {
		return
	}
	q.inEngine = true
	r.eng.Add(&q.eng)
}

func (r *replica) abort(q *request) {
	if q.inEngine && !q.done.Load() {
		r.eng.Abort(&q.eng)
	}
	q.inEngine = false
}

// run is the scheduler loop: drain arrivals, plan an iteration, sleep its
// (noisy) duration against an absolute deadline so timer overshoot does not
// accumulate, then publish the tokens.
func (r *replica) run(ctx context.Context) {
	s := r.s
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	deadline := time.Now()
	logInterval := max(s.sa.int("decode_log_interval"), 0)
	if !s.sa.has("decode_log_interval") {
		logInterval = 40
	}
	quiet := s.quiet()
	decodeSteps, tokensSinceLog := 0, 0
	ratio := r.eng.NewTokenRatio()
	lastLog := time.Now()
	for {
		if r.eng.Idle() {
			select {
			case q := <-r.in:
				r.admit(q)
			case q := <-r.aborts:
				r.abort(q)
				continue
			case done := <-r.flush:
				done <- r.eng.FlushCache()
				continue
			case <-ctx.Done():
				return
			}
			deadline = time.Now()
		}
	drain:
		for {
			select {
			case q := <-r.in:
				r.admit(q)
			case q := <-r.aborts:
				r.abort(q)
			case done := <-r.flush:
				done <- r.eng.FlushCache()
			default:
				break drain
			}
		}
		if s.hung.Load() {
			<-ctx.Done()
			return
		}
		ratio = r.eng.NewTokenRatio()
		it, ok := r.eng.Next(1, 0)
		if !ok {
			if r.eng.Idle() {
				continue
			}
			// Waiting requests that cannot be admitted with nothing
			// running: wait for arrivals or aborts.
			select {
			case q := <-r.in:
				r.admit(q)
			case q := <-r.aborts:
				r.abort(q)
			case done := <-r.flush:
				done <- r.eng.FlushCache()
			case <-ctx.Done():
				return
			}
			continue
		}
		if it.OOM {
			le := s.plan.RuntimeOOM(it.PrefillTokens+it.BatchSize, it.PrefillReqs+it.BatchSize)
			s.printSchedulerTraceback(le)
			s.die(le)
			return
		}
		d := time.Duration(it.Seconds * s.noise0 * s.gaussFactor(r.rng, 0.5, 1.5) * float64(time.Second))
		now := time.Now()
		if now.Sub(deadline) > 20*time.Millisecond {
			deadline = now // fell behind (overloaded host): do not try to catch up
		}
		deadline = deadline.Add(d)
		if wait := time.Until(deadline); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		end := time.Now()
		for _, e := range it.Prefilled {
			e.Tag.(*request).publish(e.Generated, e.CachedTokens, e.Finished(), end)
			r.promptTokens.Add(int64(e.InputLen))
			r.cachedTokens.Add(int64(e.CachedTokens))
		}
		for _, e := range it.Decoded {
			e.Tag.(*request).publish(e.Generated, e.CachedTokens, e.Finished(), end)
		}
		r.running.Store(int64(len(r.eng.Running())))
		r.queued.Store(int64(r.eng.Waiting()))
		r.kvUsed.Store(int64(r.eng.KVUsed()))
		if len(it.Retracted) > 0 { // a warning in SGLang: shown at --log-level warning too
			s.lg.logf(r.rank(), "KV cache pool is full. Retract requests. #retracted_reqs: %d, #new_token_ratio: %.4f -> %.4f",
				len(it.Retracted), ratio, r.eng.NewTokenRatio())
		}
		usage := float64(r.eng.KVUsed()) / float64(max(s.plan.MaxTotalTokens, 1))
		switch it.Kind {
		case model.IterPrefill:
			tokensSinceLog += len(it.Decoded) + len(it.Prefilled)
			if !quiet {
				s.lg.logf(r.rank(), "Prefill batch. #new-seq: %d, #new-token: %d, #cached-token: %d, token usage: %.2f, #running-req: %d, #queue-req: %d, ",
					it.PrefillReqs, it.PrefillTokens, it.CachedTokens, usage, len(r.eng.Running()), r.eng.Waiting())
			}
		case model.IterDecode:
			tokensSinceLog += it.BatchSize * it.Steps
			decodeSteps += it.Steps
			if logInterval > 0 && decodeSteps >= logInterval {
				el := time.Since(lastLog).Seconds()
				tput := float64(tokensSinceLog) / math.Max(el, 1e-9)
				r.genTput.Store(math.Float64bits(tput))
				if !quiet {
					s.lg.logf(r.rank(), "Decode batch. #running-req: %d, #token: %d, token usage: %.2f, cuda graph: %v, gen throughput (token/s): %.2f, #queue-req: %d, ",
						len(r.eng.Running()), r.eng.KVUsed(), usage, pyBool(s.plan.CudaGraph && it.BatchSize <= s.plan.Config.CudaGraphMaxBS), tput, r.eng.Waiting())
				}
				decodeSteps, tokensSinceLog, lastLog = 0, 0, time.Now()
			}
		}
	}
}
