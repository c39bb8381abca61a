package model

// The KV pool of an Engine: capacity slots, held either by requests (their
// own pages, Engine.private) or by the prefix cache (locked nodes while a
// request uses them, evictable ones otherwise). These methods keep the two
// in step; the cache's own bookkeeping is in radix.go.

// KVUsed is the number of KV slots in use: held by requests, in their own
// pages or in locked prefix-cache nodes (SGLang's token usage leaves the
// evictable cache out).
func (e *Engine) KVUsed() int {
	if e.cache == nil {
		return e.private
	}
	return e.private + e.cache.Protected()
}

// CachedTokens is the number of tokens in the prefix cache, locked or not.
func (e *Engine) CachedTokens() int {
	if e.cache == nil {
		return 0
	}
	return e.cache.Size()
}

// FlushCache empties the prefix cache when nothing is running or waiting
// (SGLang's /flush_cache) and reports whether it did.
func (e *Engine) FlushCache() bool {
	if !e.Idle() {
		return false
	}
	if e.cache != nil {
		e.cache.Reset()
	}
	return true
}

// free releases everything a request holds: its own slots and its lock on
// the prefix cache (what it put there stays, evictable).
func (e *Engine) free(r *Req) {
	e.blocked = false
	e.private -= r.kvAlloc
	e.sumCtx -= float64(r.kvTokens)
	if r.node != nil {
		e.cache.Unlock(r.node)
	}
	r.kvAlloc, r.kvTokens, r.treeLen, r.node = 0, 0, 0, nil
}

// grow extends a request's context by n computed tokens.
func (e *Engine) grow(r *Req, n int) {
	r.kvTokens += n
	e.sumCtx += float64(n)
	e.setPrivate(r)
}

// setPrivate sizes the request's own slots to the context outside the
// cache, in whole pages, evicting unlocked cache entries when the pool has
// too few free slots.
func (e *Engine) setPrivate(r *Req) {
	page := e.p.Config.PageSize
	alloc := (r.kvTokens - r.treeLen + page - 1) / page * page
	if d := alloc - r.kvAlloc; d > 0 && e.cache != nil {
		if short := e.private + e.cache.Size() + d - e.capacity; short > 0 {
			e.cache.Evict(short)
		}
	}
	e.private += alloc - r.kvAlloc
	r.kvAlloc = alloc
}

// match looks a waiting request's prompt up in the prefix cache: at most
// fillLen-1 tokens (one must be computed to sample from), in whole pages.
// It sets the request's cached and extend lengths and returns the node to
// lock if it is admitted.
func (e *Engine) match(r *Req) *radixNode {
	r.cached, r.extendLen = 0, r.fillLen
	if e.cache == nil || r.Tokens == nil {
		return nil
	}
	m, node := e.cache.Match(r.Tokens[:min(len(r.Tokens), r.fillLen-1)])
	r.cached, r.extendLen = m, r.fillLen-m
	return node
}

// admit starts a request's admission on its matched prefix: it locks the
// prefix and counts it as context and as cached tokens. It returns the
// tokens that stopped being evictable.
func (e *Engine) admit(r *Req, node *radixNode) int {
	r.prefilled = 0
	locked := 0
	if r.cached > 0 {
		locked = e.cache.Lock(node)
		r.node, r.treeLen = node, r.cached
		r.CachedTokens += r.cached
	}
	r.kvTokens = r.cached
	e.sumCtx += float64(r.cached)
	return locked
}

// unadmit undoes admit for a request that no longer fits once its prefix
// is locked.
func (e *Engine) unadmit(r *Req) {
	if r.node != nil {
		e.cache.Unlock(r.node)
		r.CachedTokens -= r.cached
	}
	e.sumCtx -= float64(r.kvTokens)
	r.kvTokens, r.treeLen, r.node = 0, 0, nil
}

// store puts the prompt tokens a request has in the KV into the prefix
// cache and moves its lock to their node (SGLang's cache_unfinished_req after
// each prefill), so that later requests share them while it still runs.
// Output tokens are not stored (see docs/simulator.md).
func (e *Engine) store(r *Req) {
	page := e.p.Config.PageSize
	if e.cache == nil || r.Tokens == nil {
		return
	}
	n := min(r.kvTokens, len(r.Tokens)) / page * page
	if n <= r.treeLen {
		return
	}
	_, depth, node := e.cache.Insert(r.Tokens[:n])
	e.cache.Lock(node)
	if r.node != nil {
		e.cache.Unlock(r.node)
	}
	r.node, r.treeLen = node, depth
	e.setPrivate(r)
}
