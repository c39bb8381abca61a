package model

import (
	"container/heap"
	"slices"
)

// RadixCache is SGLang's prefix cache (mem_cache/radix_cache.py): a radix
// tree over token ids whose edges hold KV-cache slots. Keys are matched and
// stored in whole pages (--page-size), a node referenced by a running
// request is locked (lock_ref) and cannot be evicted, and eviction removes
// unlocked leaves, least recently used first. Sizes are in tokens; the tree
// only does the bookkeeping, the Engine owns the pool the slots come from.
// Recency is a logical clock (one tick per Match or Insert), so a run is
// deterministic. A RadixCache is not safe for concurrent use.
type RadixCache struct {
	page      int
	root      *radixNode
	clock     uint64
	ids       uint64
	evictable int // tokens in unlocked nodes
	protected int // tokens in locked nodes
	// leaves holds the unlocked leaves, the eviction candidates.
	leaves map[*radixNode]struct{}
}

type radixNode struct {
	parent   *radixNode
	children map[uint64]*radixNode // by pageKey of the child's first page
	key      []int32               // this edge's tokens, whole pages
	lockRef  int
	lastUsed uint64
	id       uint64 // creation order: breaks recency ties deterministically
}

// NewRadixCache returns an empty cache matching in pages of page tokens.
func NewRadixCache(page int) *RadixCache {
	c := &RadixCache{page: max(page, 1)}
	c.Reset()
	return c
}

// Reset empties the cache (SGLang's flush_cache). Locked nodes are dropped
// too: callers reset only when no request holds one.
func (c *RadixCache) Reset() {
	c.root = &radixNode{children: map[uint64]*radixNode{}, lockRef: 1}
	c.evictable, c.protected = 0, 0
	c.leaves = map[*radixNode]struct{}{}
}

// Size is the number of tokens the cache holds.
func (c *RadixCache) Size() int { return c.evictable + c.protected }

// Evictable is the number of tokens in unlocked nodes (reclaimable).
func (c *RadixCache) Evictable() int { return c.evictable }

// Protected is the number of tokens in nodes a request holds.
func (c *RadixCache) Protected() int { return c.protected }

// aligned cuts a key to whole pages.
func (c *RadixCache) aligned(key []int32) []int32 { return key[:len(key)/c.page*c.page] }

// pageKey identifies a child by its first page (SGLang's get_child_key):
// the token itself for page 1, else an FNV-1a hash of the page; a hash
// collision is detected by comparing the page (see child).
func (c *RadixCache) pageKey(key []int32) uint64 {
	if c.page == 1 {
		return uint64(uint32(key[0]))
	}
	h := uint64(14695981039346656037)
	for _, t := range key[:c.page] {
		h ^= uint64(uint32(t))
		h *= 1099511628211
	}
	return h
}

// child returns node's child whose first page is key's first page.
func (c *RadixCache) child(n *radixNode, key []int32) (*radixNode, uint64) {
	k := c.pageKey(key)
	ch := n.children[k]
	if ch == nil || !slices.Equal(ch.key[:c.page], key[:c.page]) {
		return nil, k
	}
	return ch, k
}

// common is the length of the common prefix of a and b in whole pages.
func (c *RadixCache) common(a, b []int32) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return i / c.page * c.page
}

func (c *RadixCache) tick() uint64 {
	c.clock++
	return c.clock
}

// Match returns the length of the longest cached prefix of key (whole
// pages) and the node it ends at, refreshing the recency of the path. A
// match ending inside an edge splits it, as SGLang's match_prefix does.
func (c *RadixCache) Match(key []int32) (int, *radixNode) {
	now := c.tick()
	key = c.aligned(key)
	n := c.root
	n.lastUsed = now
	matched := 0
	for len(key) > 0 {
		ch, _ := c.child(n, key)
		if ch == nil {
			break
		}
		ch.lastUsed = now
		l := c.common(ch.key, key)
		matched += l
		if l < len(ch.key) {
			n = c.split(ch, l)
			break
		}
		n, key = ch, key[l:]
	}
	return matched, n
}

// Insert stores key (cut to whole pages) and returns how many of its
// leading tokens were already cached, how many the path to the returned node
// holds (the whole cut key unless a page-hash collision stopped it), and
// that node. The caller frees its own copies of the cached tokens' KV; the
// new tokens' slots now belong to the cache (unlocked until a request locks
// the node).
func (c *RadixCache) Insert(key []int32) (cached, depth int, last *radixNode) {
	now := c.tick()
	key = c.aligned(key)
	n := c.root
	n.lastUsed = now
	prefix := 0
	for len(key) > 0 {
		ch, k := c.child(n, key)
		if ch == nil {
			if n.children[k] != nil {
				// A different page with the same hash holds the slot:
				// keep what is cached and store no more of this key.
				return prefix, prefix, n
			}
			break
		}
		ch.lastUsed = now
		l := c.common(ch.key, key)
		prefix += l
		key = key[l:]
		if l < len(ch.key) {
			n = c.split(ch, l)
			break
		}
		n = ch
	}
	if len(key) == 0 {
		return prefix, prefix, n
	}
	c.ids++
	nn := &radixNode{parent: n, children: map[uint64]*radixNode{}, key: slices.Clone(key), lastUsed: now, id: c.ids}
	n.children[c.pageKey(key)] = nn
	c.evictable += len(key)
	c.updateLeaf(n)
	c.updateLeaf(nn)
	return prefix, prefix + len(key), nn
}

// split cuts ch after l tokens and returns the new upper node; ch keeps
// the rest (so a request holding ch still holds the deepest node).
func (c *RadixCache) split(ch *radixNode, l int) *radixNode {
	c.ids++
	up := &radixNode{parent: ch.parent, children: map[uint64]*radixNode{}, key: ch.key[:l:l],
		lockRef: ch.lockRef, lastUsed: ch.lastUsed, id: c.ids}
	ch.parent.children[c.pageKey(up.key)] = up
	ch.key = ch.key[l:]
	ch.parent = up
	up.children[c.pageKey(ch.key)] = ch
	return up
}

// Lock takes a reference on n and its ancestors (inc_lock_ref) and returns
// the tokens that stopped being evictable.
func (c *RadixCache) Lock(n *radixNode) int {
	moved := 0
	for ; n != nil && n != c.root; n = n.parent {
		if n.lockRef == 0 {
			c.evictable -= len(n.key)
			c.protected += len(n.key)
			moved += len(n.key)
		}
		n.lockRef++
		c.updateLeaf(n)
	}
	return moved
}

// Unlock drops a reference taken by Lock (dec_lock_ref) and returns the
// tokens that became evictable.
func (c *RadixCache) Unlock(n *radixNode) int {
	moved := 0
	for ; n != nil && n != c.root; n = n.parent {
		if n.lockRef == 1 {
			c.evictable += len(n.key)
			c.protected -= len(n.key)
			moved += len(n.key)
		}
		n.lockRef--
		c.updateLeaf(n)
	}
	return moved
}

// updateLeaf keeps the set of evictable leaves current.
func (c *RadixCache) updateLeaf(n *radixNode) {
	if n == c.root {
		return
	}
	if n.lockRef == 0 && len(n.children) == 0 {
		c.leaves[n] = struct{}{}
	} else {
		delete(c.leaves, n)
	}
}

// Evict frees at least tokens tokens by removing unlocked leaves, least
// recently used first (a parent left childless and unlocked becomes a
// candidate), and returns how many it freed: less when too few are
// unlocked.
func (c *RadixCache) Evict(tokens int) int {
	if tokens <= 0 || len(c.leaves) == 0 {
		return 0
	}
	h := make(lruHeap, 0, len(c.leaves))
	for n := range c.leaves {
		h = append(h, n)
	}
	heap.Init(&h)
	freed := 0
	for freed < tokens && h.Len() > 0 {
		n := heap.Pop(&h).(*radixNode)
		p := n.parent
		delete(p.children, c.pageKey(n.key))
		delete(c.leaves, n)
		c.evictable -= len(n.key)
		freed += len(n.key)
		c.updateLeaf(p)
		if _, ok := c.leaves[p]; ok {
			heap.Push(&h, p)
		}
	}
	return freed
}

// lruHeap orders nodes least recently used first.
type lruHeap []*radixNode

func (h lruHeap) Len() int { return len(h) }
func (h lruHeap) Less(i, j int) bool {
	if h[i].lastUsed != h[j].lastUsed {
		return h[i].lastUsed < h[j].lastUsed
	}
	return h[i].id < h[j].id
}
func (h lruHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *lruHeap) Push(x any)   { *h = append(*h, x.(*radixNode)) }
func (h *lruHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}
