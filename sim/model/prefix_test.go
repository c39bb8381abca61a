package model

import (
	"testing"
)

// runToEnd drives an engine until it is idle, checking the pool never
// overflows, and returns the number of iterations.
func runToEnd(t *testing.T, e *Engine) int {
	t.Helper()
	n := 0
	for ; n < 100000; n++ {
		if _, ok := e.Next(1, 0); !ok {
			break
		}
		if used := e.private + e.CachedTokens(); used > e.capacity {
			t.Fatalf("iteration %d: %d slots in use (%d private + %d cached) > capacity %d", n, used, e.private, e.CachedTokens(), e.capacity)
		}
	}
	if !e.Idle() {
		t.Fatalf("engine not idle after %d iterations", n)
	}
	return n
}

func TestEngine_prefixCache(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	sys := seq(1, 1000)
	prompt := func(q int) []int32 { return cat(sys, seq(100000+q*100, 50)) }
	tests := []struct {
		name       string
		cfg        Config
		wantCached int // of the second request, sent after the first finished
	}{
		{name: "page 1 hits the whole system prompt", cfg: Config{}, wantCached: 1000},
		{name: "page 64 hits whole pages", cfg: Config{PageSize: 64}, wantCached: 960},
		{name: "disabled", cfg: Config{DisableRadixCache: true}, wantCached: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustPlan(t, tc.cfg, hw, m), 1)
			first := &Req{InputLen: 1050, MaxNewTokens: 8, Tokens: prompt(0)}
			e.Add(first)
			runToEnd(t, e)
			if first.CachedTokens != 0 || e.KVUsed() != 0 {
				t.Fatalf("first: cached %d, KV used after it finished %d", first.CachedTokens, e.KVUsed())
			}
			second := &Req{InputLen: 1050, MaxNewTokens: 8, Tokens: prompt(1)}
			e.Add(second)
			it, _ := e.Next(1, 0)
			if it.Kind != IterPrefill || it.PrefillTokens != 1050-tc.wantCached || it.CachedTokens != tc.wantCached {
				t.Fatalf("second prefill: kind %v, %d tokens, %d cached; want %d cached", it.Kind, it.PrefillTokens, it.CachedTokens, tc.wantCached)
			}
			runToEnd(t, e)
			if second.CachedTokens != tc.wantCached || e.KVUsed() != 0 {
				t.Fatalf("second: cached %d, want %d; KV used %d", second.CachedTokens, tc.wantCached, e.KVUsed())
			}
			// The same prompt again hits all but the last token (one is
			// always computed), in whole pages.
			again := &Req{InputLen: 1050, MaxNewTokens: 8, Tokens: prompt(1)}
			e.Add(again)
			runToEnd(t, e)
			if want := 1049 / tc.cfg.pageOr1() * tc.cfg.pageOr1(); !tc.cfg.DisableRadixCache && again.CachedTokens != want {
				t.Fatalf("repeat: cached %d, want %d", again.CachedTokens, want)
			}
			if !e.FlushCache() || e.CachedTokens() != 0 {
				t.Fatalf("flush on an idle engine left %d tokens", e.CachedTokens())
			}
		})
	}
}

func (c Config) pageOr1() int { return max(c.PageSize, 1) }

// TestEngine_prefixCacheUnderPressure fills a small pool with many prefixes:
// eviction keeps the pool within capacity, locked prefixes survive, and
// every request finishes.
func TestEngine_prefixCacheUnderPressure(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	for _, policy := range []string{"fcfs", "lpm", "dfs-weight", "lof", "random"} {
		t.Run(policy, func(t *testing.T) {
			e := NewEngine(mustPlan(t, Config{MaxTotalTokens: 12000, SchedulePolicy: policy}, hw, m), 1)
			var reqs []*Req
			for i := range 200 {
				g := (i / 5) % 20 // runs of 5 requests sharing a prefix, 20 prefixes that do not all fit
				r := &Req{InputLen: 1064, MaxNewTokens: 32, Tokens: cat(seq(g*10000, 1000), seq(1000000+i*64, 64))}
				reqs = append(reqs, r)
				e.Add(r)
			}
			runToEnd(t, e)
			hits := 0
			for _, r := range reqs {
				if !r.Finished() {
					t.Fatalf("request not finished: %+v", r)
				}
				hits += r.CachedTokens
			}
			if hits == 0 {
				t.Fatalf("no cache hits with 20 shared prefixes")
			}
			if e.KVUsed() != 0 || e.cache.Protected() != 0 {
				t.Fatalf("idle engine holds %d slots (%d locked in the cache)", e.KVUsed(), e.cache.Protected())
			}
		})
	}
}

func gspWorkload(groups, conc int) Workload {
	return Workload{Dataset: DatasetGeneratedSharedPfx, GSPNumGroups: groups, GSPPromptsPerGroup: 256 / groups,
		GSPSystemPromptLen: 2048, GSPQuestionLen: 64, GSPOutputLen: 32, MaxConcurrency: conc, Seed: 1}
}

// TestEvaluate_schedulePolicyAndCache is the model side of the radix-cache
// target: on shared prefixes that do not all fit in the cache, lpm and
// dfs-weight (which admit cached prefixes first) beat fcfs on TTFT and hit
// rate; on random prompts they do not; the cache itself cuts TTFT; larger
// pages match less.
func TestEvaluate_schedulePolicyAndCache(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	eval := func(cfg Config, w Workload) Result {
		t.Helper()
		r, err := Evaluate(cfg, hw, m, w)
		if err != nil {
			t.Fatalf("Evaluate(%+v): %v", cfg, err)
		}
		return r
	}
	pressure := Config{MaxTotalTokens: 32768}
	shared := gspWorkload(16, 64)
	fcfs := eval(pressure, shared)
	for _, policy := range []string{"lpm", "dfs-weight"} {
		cfg := pressure
		cfg.SchedulePolicy = policy
		r := eval(cfg, shared)
		if r.MeanTTFTMs > 0.8*fcfs.MeanTTFTMs || r.CacheHitRate <= fcfs.CacheHitRate {
			t.Errorf("shared prefixes: %s TTFT %.0f ms, hit %.2f vs fcfs %.0f ms, hit %.2f", policy, r.MeanTTFTMs, r.CacheHitRate, fcfs.MeanTTFTMs, fcfs.CacheHitRate)
		}
	}
	random := Workload{NumPrompts: 256, InputLen: 2112, OutputLen: 32, RangeRatio: 1, MaxConcurrency: 64, Seed: 1}
	rf := eval(pressure, random)
	cfg := pressure
	cfg.SchedulePolicy = "lpm"
	if rl := eval(cfg, random); rl.MeanTTFTMs < 0.98*rf.MeanTTFTMs || rl.CacheHitRate != 0 {
		t.Errorf("random prompts: lpm TTFT %.0f ms vs fcfs %.0f ms (hit %.2f): lpm must not win", rl.MeanTTFTMs, rf.MeanTTFTMs, rl.CacheHitRate)
	}
	if fcfs.MeanTTFTMs > 0.5*rf.MeanTTFTMs {
		t.Errorf("the cache saves little: shared-prefix TTFT %.0f ms vs %.0f ms for random prompts of the same length", fcfs.MeanTTFTMs, rf.MeanTTFTMs)
	}
	off := eval(Config{DisableRadixCache: true}, shared)
	on := eval(Config{}, shared)
	if off.CacheHitRate != 0 || on.CacheHitRate < 0.85 || on.MeanTTFTMs > 0.5*off.MeanTTFTMs {
		t.Errorf("cache on: TTFT %.0f ms hit %.2f; off: TTFT %.0f ms hit %.2f", on.MeanTTFTMs, on.CacheHitRate, off.MeanTTFTMs, off.CacheHitRate)
	}
	odd := shared
	odd.GSPSystemPromptLen = 2000 // not a multiple of 256
	p1, p256 := eval(Config{PageSize: 16}, odd), eval(Config{PageSize: 256}, odd)
	if p256.CacheHitRate >= p1.CacheHitRate-0.05 {
		t.Errorf("page 256 hit %.3f vs page 16 %.3f: a 2000-token prefix should lose its last partial page", p256.CacheHitRate, p1.CacheHitRate)
	}
}
