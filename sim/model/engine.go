package model

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Req is one request inside an Engine.
type Req struct {
	// ID is the caller's identifier; Tag carries any caller data.
	ID  int64
	Tag any
	// InputLen is the prompt length in tokens.
	InputLen int
	// MaxNewTokens is the requested max_new_tokens; OutputLen (<= MaxNewTokens)
	// is how many tokens the request really generates before it finishes
	// (MaxNewTokens with ignore_eos).
	MaxNewTokens, OutputLen int
	// Generated counts output tokens produced so far.
	Generated int
	// Retractions counts how often the request was retracted for lack of KV memory.
	Retractions int
	// Tokens are the prompt's token ids, which the prefix cache matches and
	// stores. Nil marks a prompt that shares no prefix with any other (random
	// ids), which skips the cache.
	Tokens []int32
	// CachedTokens counts the prompt tokens served from the prefix cache
	// instead of prefilled, over every admission (SGLang's
	// meta_info.cached_tokens).
	CachedTokens int

	seq       int64      // arrival order
	fillLen   int        // tokens the KV must hold at admission (prompt + generated after a retraction)
	cached    int        // of fillLen, matched in the prefix cache at admission
	extendLen int        // fillLen - cached: tokens to prefill
	prefilled int        // of extendLen, already prefilled
	kvTokens  int        // context tokens in the KV cache (cached prefix included)
	kvAlloc   int        // KV slots the request holds outside the prefix cache (whole pages)
	treeLen   int        // leading tokens held in the prefix cache, locked through node
	node      *radixNode // the deepest cache node the request locks
	randKey   uint64
}

// Finished reports that the request generated all its tokens.
func (r *Req) Finished() bool { return r.Generated >= r.OutputLen }

// IterKind is the kind of one scheduler iteration.
type IterKind int

// Iteration kinds.
const (
	IterPrefill IterKind = iota + 1
	IterDecode
)

// Iteration is what one Engine.Next call ran. Its slices are reused by the
// next call.
type Iteration struct {
	Kind IterKind
	// Seconds is the modelled, noise-free wall time.
	Seconds float64
	// Steps is the number of decode steps (k for a fast-forwarded decode, 1 for a prefill).
	Steps int
	// BatchSize is the number of running requests that decoded (0 for a pure prefill).
	BatchSize int
	// PrefillTokens and PrefillReqs describe the extend part.
	PrefillTokens, PrefillReqs int
	// CachedTokens is the prompt tokens the newly admitted requests found in
	// the prefix cache (the log's #cached-token).
	CachedTokens int
	// Mixed reports decodes riding along a prefill chunk.
	Mixed bool
	// Prefilled lists requests that finished their prefill and got their first token.
	Prefilled []*Req
	// Decoded lists requests that got tokens by decoding.
	Decoded []*Req
	// Finished lists requests that completed (a subset of Prefilled and Decoded).
	Finished []*Req
	// Retracted lists requests sent back to the waiting queue for lack of KV memory.
	Retracted []*Req
	// OOM reports a forward whose activations do not fit (torch.OutOfMemoryError).
	OOM bool
}

// Engine is one replica's continuous-batching scheduler as a pure state
// machine in virtual time: SGLang's get_next_batch_to_run with its
// PrefillAdder budgets, chunked prefill, mixed chunk, KV-cache admission with
// the new-token ratio, retraction, and the scheduling policies. The caller
// owns the clock: it adds arrivals, calls Next, and waits Iteration.Seconds.
// An Engine is not safe for concurrent use.
type Engine struct {
	p        *Plan
	capacity int
	maxRun   int
	rng      *rand.Rand

	waiting []*Req
	running []*Req
	chunked *Req
	// cache is the prefix cache (nil with --disable-radix-cache); private
	// counts the slots requests hold outside it. The pool's used slots are
	// private + the cache's locked tokens; its unlocked tokens are free to
	// evict, so admission counts them as available, as SGLang does.
	cache   *RadixCache
	private int
	sumCtx  float64
	seq     int64

	ratio, minRatio, ratioDecay, initRatio float64
	roundLeft                              int
	// blocked: the waiting queue cannot be admitted until a request finishes
	// (request pool full, or KV short with the new-token ratio at its floor).
	blocked bool
	// sorted: the waiting queue is in policy order.
	sorted bool

	it    Iteration
	batch []*Req
	ext   []int
	// Retractions counts retracted requests so far.
	Retractions int
	// PeakPrefillTokens is the largest prefill iteration so far, in tokens.
	PeakPrefillTokens int
}

// NewEngine returns an empty scheduler for one replica of plan.
func NewEngine(p *Plan, seed uint64) *Engine {
	init := min(initNewTokenRatio*p.Config.ScheduleConservativeness, 1)
	e := &Engine{
		p:          p,
		capacity:   p.MaxTotalTokens,
		maxRun:     p.MaxRunningRequests,
		rng:        rand.New(rand.NewPCG(seed, 0x5167a2e)),
		initRatio:  init,
		ratio:      init,
		minRatio:   init * minNewTokenRatioFactor,
		ratioDecay: (init - init*minNewTokenRatioFactor) / newTokenRatioDecaySteps,
	}
	if !p.Config.DisableRadixCache {
		e.cache = NewRadixCache(p.Config.PageSize)
	}
	return e
}

// Plan returns the engine's plan.
func (e *Engine) Plan() *Plan { return e.p }

// Add enqueues an arriving request.
func (e *Engine) Add(r *Req) {
	e.seq++
	r.seq = e.seq
	r.fillLen, r.cached, r.extendLen = r.InputLen, 0, r.InputLen
	r.prefilled = 0
	r.randKey = e.rng.Uint64()
	// scheduler.handle_generate_request clamps max_new_tokens so a request
	// fits max_req_len = min(context_len - 1, max_total_num_tokens - 1).
	maxReqLen := min(e.p.Config.ContextLength-1, e.capacity/max(e.p.AttnDP, 1)-1)
	if r.InputLen+r.MaxNewTokens > maxReqLen {
		r.MaxNewTokens = max(maxReqLen-r.InputLen, 1)
	}
	if r.OutputLen <= 0 || r.OutputLen > r.MaxNewTokens {
		r.OutputLen = r.MaxNewTokens
	}
	e.waiting = append(e.waiting, r)
	e.sorted = e.sorted && e.p.Config.SchedulePolicy != "lof" && e.p.Config.SchedulePolicy != "random"
	e.blocked = false
}

// Idle reports that nothing is running or waiting.
func (e *Engine) Idle() bool {
	return len(e.waiting) == 0 && len(e.running) == 0 && e.chunked == nil
}

// Running returns the running batch (do not modify).
func (e *Engine) Running() []*Req { return e.running }

// Waiting is the number of queued requests.
func (e *Engine) Waiting() int { return len(e.waiting) }

// NewTokenRatio is the current new-token ratio used to reserve KV for running requests.
func (e *Engine) NewTokenRatio() float64 { return e.ratio }

// Abort removes a request wherever it is (a client went away).
func (e *Engine) Abort(r *Req) {
	if i := slices.Index(e.waiting, r); i >= 0 {
		e.waiting = slices.Delete(e.waiting, i, i+1)
		return
	}
	if e.chunked == r {
		e.chunked = nil
		e.free(r)
		return
	}
	if i := slices.Index(e.running, r); i >= 0 {
		e.running = slices.Delete(e.running, i, i+1)
		e.free(r)
	}
}

func clipNew(r *Req) int { return min(r.MaxNewTokens-r.Generated, clipMaxNewTokens) }

// Next plans and commits the next iteration: a prefill batch when new
// requests can be admitted (or a chunked prefill is in progress), else up to
// maxSteps decode steps of the running batch, stopping early at the first
// finishing request or once maxSeconds of decoding have passed (at least one
// step). It returns false when there is nothing to run.
func (e *Engine) Next(maxSteps int, maxSeconds float64) (*Iteration, bool) {
	it := &e.it
	*it = Iteration{Prefilled: it.Prefilled[:0], Decoded: it.Decoded[:0], Finished: it.Finished[:0], Retracted: it.Retracted[:0]}
	if e.roundLeft <= 0 && e.tryPrefill(it) {
		return it, true
	}
	if len(e.running) == 0 {
		return it, false
	}
	e.decode(it, maxSteps, maxSeconds)
	return it, true
}

// reserved is the KV the running batch is expected to still need.
func (e *Engine) reserved() float64 {
	s := 0.0
	for _, r := range e.running {
		s += float64(clipNew(r)) * e.ratio
	}
	return s
}

func (e *Engine) tryPrefill(it *Iteration) bool {
	c := e.p.Config
	e.blocked = false
	if e.chunked == nil && len(e.waiting) == 0 {
		return false
	}
	if e.chunked == nil && len(e.running) >= e.maxRun {
		e.blocked = true
		return false
	}
	chunking := c.ChunkedPrefillSize > 0
	mixed := c.EnableMixedChunk && chunking && len(e.running) > 0
	remInput := c.MaxPrefillTokens
	remChunk := math.MaxInt
	if chunking {
		// Under DP attention each attention group prefills its own chunk.
		remChunk = c.ChunkedPrefillSize * e.p.AttnDP
		if mixed {
			remChunk -= len(e.running)
		}
	}
	remTotal := float64(e.capacity-e.KVUsed()) - e.reserved()
	page := c.PageSize
	tokens := 0
	attn := 0.0
	batch, ext := e.batch[:0], e.ext[:0]
	add := func(r *Req, t int) {
		attn += float64(t) * (float64(r.cached+r.prefilled) + float64(t)/2)
		tokens += t
		remInput -= t
		remChunk -= t
		batch = append(batch, r)
		ext = append(ext, t)
	}
	stillChunked := false
	if r := e.chunked; r != nil {
		left := r.extendLen - r.prefilled
		t := left
		if t > remChunk {
			t = remChunk / page * page
			stillChunked = true
		}
		if t > 0 {
			add(r, t)
		}
	}
	if !stillChunked {
		e.orderWaiting()
		n := 0
		for _, r := range e.waiting {
			if len(e.running)+len(batch) >= e.maxRun || remInput <= 0 || remChunk <= 0 {
				break
			}
			node := e.match(r)
			need := float64(r.extendLen + clipNew(r))
			if need > remTotal && !(len(e.running) == 0 && len(batch) == 0 && r.extendLen < e.capacity-e.KVUsed()) {
				// (With nothing running, admit the head if its prompt fits at
				// all, so an over-long max_new_tokens cannot stall the queue.)
				e.blocked = len(batch) == 0 && e.ratio <= e.minRatio
				break
			}
			t, last := r.extendLen, false
			if t > remChunk {
				t, last = remChunk/page*page, true
				if t <= 0 {
					break
				}
			} else if !chunking && t > remInput && len(batch) > 0 {
				break
			}
			// Locking the matched prefix takes it out of the evictable
			// cache the budget counted as free: check again (PrefillAdder
			// does, under _lock_node).
			locked := e.admit(r, node)
			if locked > 0 && need > remTotal-float64(locked) && !(len(e.running) == 0 && len(batch) == 0) {
				e.unadmit(r)
				break
			}
			remTotal -= need + float64(locked)
			it.CachedTokens += r.cached
			add(r, t)
			n++
			if last {
				break
			}
		}
		e.waiting = e.waiting[n:]
	}
	e.batch, e.ext = batch, ext
	if len(batch) == 0 {
		return false
	}
	// Commit: allocate KV for the extended tokens; finished prefills get their first token.
	e.chunked = nil
	decoders := 0
	var decCtx float64
	if mixed {
		decoders, decCtx = len(e.running), e.sumCtx
	}
	for i, r := range batch {
		e.grow(r, ext[i])
		r.prefilled += ext[i]
		e.store(r)
		if r.prefilled < r.extendLen {
			e.chunked = r
			continue
		}
		r.Generated++
		it.Prefilled = append(it.Prefilled, r)
		if r.Finished() {
			e.free(r)
			it.Finished = append(it.Finished, r)
		} else {
			e.running = append(e.running, r)
		}
	}
	if mixed {
		it.Mixed = true
		for _, r := range e.running[:decoders] {
			e.grow(r, 1)
			r.Generated++
			it.Decoded = append(it.Decoded, r)
		}
		e.reap(it)
	}
	it.Kind = IterPrefill
	it.Steps = 1
	it.PrefillTokens = tokens
	it.PrefillReqs = len(batch)
	it.BatchSize = decoders
	it.Seconds = e.p.PrefillSeconds(tokens, attn, len(batch), decoders, decCtx, len(e.waiting))
	e.PeakPrefillTokens = max(e.PeakPrefillTokens, tokens)
	if !e.p.FitsActivations(tokens+decoders, len(batch)+decoders) {
		it.OOM = true
	}
	return true
}

// reap moves finished running requests out of the batch.
func (e *Engine) reap(it *Iteration) {
	kept := e.running[:0]
	for _, r := range e.running {
		if r.Finished() {
			e.free(r)
			it.Finished = append(it.Finished, r)
			continue
		}
		kept = append(kept, r)
	}
	clear(e.running[len(kept):])
	e.running = kept
}

func (e *Engine) decode(it *Iteration, maxSteps int, maxSeconds float64) {
	c := e.p.Config
	page := c.PageSize
	// Memory for the next token of every running request; retract if short.
	if e.capacity-e.KVUsed() < len(e.running)*page && len(e.running) > 1 {
		e.retract(it)
	}
	bs := len(e.running)
	k := max(maxSteps, 1)
	for _, r := range e.running {
		k = min(k, r.OutputLen-r.Generated)
	}
	if (len(e.waiting) > 0 && !e.blocked) || e.chunked != nil {
		if e.roundLeft <= 0 {
			e.roundLeft = c.NumContinuousDecodeSteps
		}
		k = min(k, e.roundLeft)
	}
	if free := e.capacity - e.KVUsed(); free < bs*k+bs*page {
		k = max(1, free/bs-page)
	}
	step0 := e.p.DecodeStepSeconds(bs, e.sumCtx, len(e.waiting))
	if maxSeconds > 0 && step0 > 0 && float64(k)*step0 > maxSeconds {
		k = max(1, int(maxSeconds/step0))
	}
	k = max(k, 1)
	// k steps with the context growing by bs per step: the midpoint step
	// time is exact for the linear terms.
	mid := e.sumCtx + float64(bs)*float64(k-1)/2
	it.Seconds = float64(k) * e.p.DecodeStepSeconds(bs, mid, len(e.waiting))
	for _, r := range e.running {
		e.grow(r, k)
		r.Generated += k
		it.Decoded = append(it.Decoded, r)
	}
	it.Kind = IterDecode
	it.Steps = k
	it.BatchSize = bs
	e.roundLeft = max(e.roundLeft-k, 0)
	e.ratio = max(e.minRatio, e.ratio-e.ratioDecay*float64(k))
	e.reap(it)
	if !e.p.FitsActivations(bs, bs) {
		it.OOM = true
	}
}

// retract sends requests back to the waiting queue until the batch can
// decode retractDecodeSteps more tokens (scheduler.retract_decode: fewest
// output tokens first, then longest prompts).
func (e *Engine) retract(it *Iteration) {
	page := e.p.Config.PageSize
	slices.SortStableFunc(e.running, func(a, b *Req) int {
		if a.Generated != b.Generated {
			return b.Generated - a.Generated
		}
		return a.InputLen - b.InputLen
	})
	for len(e.running) > 1 && e.capacity-e.KVUsed() < len(e.running)*max(retractDecodeSteps, page) {
		r := e.running[len(e.running)-1]
		e.running = e.running[:len(e.running)-1]
		e.free(r)
		r.Retractions++
		r.fillLen = r.InputLen + r.Generated
		r.cached, r.extendLen, r.prefilled = 0, r.fillLen, 0
		it.Retracted = append(it.Retracted, r)
		e.Retractions++
	}
	e.waiting = append(slices.Clone(it.Retracted), e.waiting...)
	e.sorted = false
	e.blocked = false
	decoded, maxNew := 0, 0
	for _, r := range e.running {
		decoded += r.Generated
		maxNew += r.MaxNewTokens
	}
	if maxNew > 0 {
		e.ratio = min(1, float64(decoded+retractDecodeSteps*len(e.running))/float64(maxNew))
	}
	slices.SortStableFunc(e.running, func(a, b *Req) int { return int(a.seq - b.seq) })
}
