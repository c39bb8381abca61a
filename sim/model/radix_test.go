package model

import (
	"testing"
)

func seq(from, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(from + i)
	}
	return out
}

func cat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestRadixCache_matchInsert(t *testing.T) {
	a, b := seq(0, 10), seq(100, 6)
	tests := []struct {
		name        string
		page        int
		stored      [][]int32
		query       []int32
		wantMatch   int
		wantSize    int
		insertQuery bool
		wantCached  int
	}{
		{name: "empty cache", page: 1, query: a, wantMatch: 0},
		{name: "exact", page: 1, stored: [][]int32{a}, query: a, wantMatch: 10, wantSize: 10},
		{name: "prefix of stored splits the edge", page: 1, stored: [][]int32{a}, query: a[:4], wantMatch: 4, wantSize: 10},
		{name: "diverging suffix", page: 1, stored: [][]int32{a}, query: cat(a[:7], b), wantMatch: 7, wantSize: 10,
			insertQuery: true, wantCached: 7},
		{name: "two branches", page: 1, stored: [][]int32{cat(a[:5], b), a}, query: a, wantMatch: 10, wantSize: 16},
		{name: "page 4 matches whole pages only", page: 4, stored: [][]int32{a}, query: cat(a[:7], b), wantMatch: 4, wantSize: 8,
			insertQuery: true, wantCached: 4},
		{name: "page 4 stores whole pages only", page: 4, stored: [][]int32{a[:7]}, query: a, wantMatch: 4, wantSize: 4},
		{name: "no common first token", page: 1, stored: [][]int32{a}, query: b, wantMatch: 0, wantSize: 10,
			insertQuery: true, wantCached: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewRadixCache(tc.page)
			for _, s := range tc.stored {
				c.Insert(s)
			}
			if got, _ := c.Match(tc.query); got != tc.wantMatch {
				t.Fatalf("Match = %d, want %d", got, tc.wantMatch)
			}
			if c.Size() != tc.wantSize || c.Evictable() != tc.wantSize || c.Protected() != 0 {
				t.Fatalf("size %d evictable %d protected %d, want %d unlocked", c.Size(), c.Evictable(), c.Protected(), tc.wantSize)
			}
			if !tc.insertQuery {
				return
			}
			cached, depth, _ := c.Insert(tc.query)
			aligned := len(tc.query) / tc.page * tc.page
			if cached != tc.wantCached || depth != aligned {
				t.Fatalf("Insert = cached %d depth %d, want %d, %d", cached, depth, tc.wantCached, aligned)
			}
			if want := tc.wantSize + aligned - tc.wantCached; c.Size() != want {
				t.Fatalf("size after insert %d, want %d", c.Size(), want)
			}
			if got, _ := c.Match(tc.query); got != aligned {
				t.Fatalf("Match after insert = %d, want %d", got, aligned)
			}
		})
	}
}

func TestRadixCache_lockAndEvict(t *testing.T) {
	c := NewRadixCache(1)
	sys := seq(0, 100)
	_, _, n1 := c.Insert(cat(sys, seq(1000, 10))) // oldest
	_, _, n2 := c.Insert(cat(sys, seq(2000, 10)))
	_, _, n3 := c.Insert(cat(sys, seq(3000, 10)))
	if c.Size() != 130 {
		t.Fatalf("size %d, want 130 (shared 100 + 3 x 10)", c.Size())
	}
	// A request holding n2 protects its path: the shared prefix and its leaf.
	if got := c.Lock(n2); got != 110 || c.Protected() != 110 || c.Evictable() != 20 {
		t.Fatalf("Lock moved %d; protected %d evictable %d", got, c.Protected(), c.Evictable())
	}
	if got := c.Lock(n3); got != 10 {
		t.Fatalf("second lock moved %d, want only n3's own 10", got)
	}
	if got := c.Unlock(n3); got != 10 {
		t.Fatalf("Unlock moved %d, want 10", got)
	}
	// Touch n1's path so that n3 is now the least recently used leaf.
	c.Match(cat(sys, seq(1000, 10)))
	if got := c.Evict(5); got != 10 {
		t.Fatalf("Evict(5) freed %d, want one leaf of 10", got)
	}
	if m, _ := c.Match(cat(sys, seq(3000, 10))); m != 100 {
		t.Fatalf("n3 (LRU) should be gone: match %d, want 100", m)
	}
	if m, _ := c.Match(cat(sys, seq(1000, 10))); m != 110 {
		t.Fatalf("n1 (recent) should stay: match %d", m)
	}
	// Everything unlocked goes; the locked path stays.
	if got := c.Evict(1000); got != 10 || c.Size() != 110 {
		t.Fatalf("Evict(all) freed %d, size %d; want 10 freed, 110 locked left", got, c.Size())
	}
	_ = n1
	c.Unlock(n2)
	if got := c.Evict(1000); got != 110 || c.Size() != 0 || c.Evictable() != 0 {
		t.Fatalf("after unlock Evict freed %d, size %d", got, c.Size())
	}
}

func TestRadixCache_splitKeepsLocks(t *testing.T) {
	c := NewRadixCache(1)
	_, _, n := c.Insert(seq(0, 20))
	c.Lock(n)
	// A match ending inside the locked edge splits it; both halves stay locked.
	if m, _ := c.Match(seq(0, 8)); m != 8 {
		t.Fatalf("match %d", m)
	}
	if c.Protected() != 20 || c.Evictable() != 0 || c.Evict(100) != 0 {
		t.Fatalf("split lost the lock: protected %d evictable %d", c.Protected(), c.Evictable())
	}
	c.Unlock(n)
	if c.Protected() != 0 || c.Evictable() != 20 {
		t.Fatalf("after unlock protected %d evictable %d", c.Protected(), c.Evictable())
	}
}
