package model

import (
	"cmp"
	"slices"
)

// In-batch prefix caching (schedule_policy.py): a waiting request whose
// cached prefix is at most inBatchCheckTokens long is checked against the
// other waiting requests, and deprioritised when it shares at least
// inBatchDeprioritizeTokens with one ahead of it, so that one of them
// computes the prefix and the rest find it cached a round later.
const (
	inBatchCheckTokens        = 32 // IN_BATCH_PREFIX_CACHING_CHECK_THRESHOLD
	inBatchDeprioritizeTokens = 32 // IN_BATCH_PREFIX_CACHING_DEPRIORITIZE_THRESHOLD
)

// orderWaiting puts the waiting queue in the schedule policy's order before
// a prefill round (SchedulePolicy.calc_priority): fcfs keeps arrival order
// (retracted requests first), lof puts the longest max_new_tokens first,
// random shuffles, lpm puts the longest cached prefix first (fcfs above
// lpmFallbackQueue waiting requests, where SGLang stops matching), and
// dfs-weight walks the cache tree heaviest subtree first. Without the cache
// (--disable-radix-cache), NewPlan has already turned lpm and dfs-weight into
// fcfs.
func (e *Engine) orderWaiting() {
	policy := e.p.Config.SchedulePolicy
	cacheAware := e.cache != nil && (policy == "lpm" || policy == "dfs-weight")
	if cacheAware && len(e.waiting) > 1 {
		if policy == "dfs-weight" {
			e.sortByDFSWeight()
			return
		}
		if len(e.waiting) <= lpmFallbackQueue {
			e.sortByLongestPrefix()
			return
		}
	}
	if e.sorted {
		return
	}
	e.sorted = true
	switch policy {
	case "lof":
		slices.SortStableFunc(e.waiting, func(a, b *Req) int { return b.MaxNewTokens - a.MaxNewTokens })
	case "random":
		for _, r := range e.waiting {
			r.randKey = e.rng.Uint64()
		}
		slices.SortFunc(e.waiting, func(a, b *Req) int { return cmp.Compare(a.randKey, b.randKey) })
	default:
		slices.SortStableFunc(e.waiting, func(a, b *Req) int {
			// retracted requests keep their place at the front
			ra, rb := a.Retractions > 0, b.Retractions > 0
			if ra != rb {
				if ra {
					return -1
				}
				return 1
			}
			return int(a.seq - b.seq)
		})
	}
}

// sortByLongestPrefix is lpm: a stable sort by cached prefix length, longest
// first, with in-batch deprioritisation.
func (e *Engine) sortByLongestPrefix() {
	e.sorted = false
	inBatch := NewRadixCache(1)
	keys := make(map[*Req]int, len(e.waiting))
	for _, r := range e.waiting {
		e.match(r)
		keys[r] = -r.cached
		if r.Tokens == nil || r.cached > inBatchCheckTokens {
			continue
		}
		// Only whether two prompts share the threshold matters, so their
		// first inBatchDeprioritizeTokens tokens are enough.
		head := r.Tokens[:min(len(r.Tokens), inBatchDeprioritizeTokens)]
		if m, _ := inBatch.Match(head); m >= inBatchDeprioritizeTokens {
			keys[r] = 1 // after every other request
			continue
		}
		inBatch.Insert(head)
	}
	slices.SortStableFunc(e.waiting, func(a, b *Req) int { return cmp.Compare(keys[a], keys[b]) })
}

// sortByDFSWeight is dfs-weight: each waiting request hangs at the node its
// cached prefix ends at; a node weighs the requests in its subtree; a
// depth-first walk from the root visits heavier children first and emits a
// node's requests (in queue order) after its subtree's, so requests sharing
// a cached prefix are admitted together, deepest matches first, and requests
// with no cached prefix last.
func (e *Engine) sortByDFSWeight() {
	e.sorted = false
	at := map[*radixNode][]*Req{}
	weight := map[*radixNode]int{}
	for _, r := range e.waiting {
		n := e.match(r)
		if n == nil || r.cached == 0 {
			n = e.cache.root
		}
		at[n] = append(at[n], r)
		for ; n != nil; n = n.parent {
			weight[n]++
		}
	}
	out := e.waiting[:0:0]
	var walk func(n *radixNode)
	walk = func(n *radixNode) {
		var kids []*radixNode
		for _, ch := range n.children {
			if weight[ch] > 0 {
				kids = append(kids, ch)
			}
		}
		slices.SortFunc(kids, func(a, b *radixNode) int {
			if weight[a] != weight[b] {
				return weight[b] - weight[a]
			}
			return cmp.Compare(a.id, b.id)
		})
		for _, ch := range kids {
			walk(ch)
		}
		out = append(out, at[n]...)
	}
	walk(e.cache.root)
	e.waiting = append(e.waiting[:0], out...)
}
