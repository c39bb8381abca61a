package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchStats is what bench measured, from the server's own timings.
type benchStats struct {
	meanTTFT, p99TTFT, p99TPOT float64 // ms
	outputTPS                  float64 // output tokens/s over the run
	hitRate                    float64 // cached / prompt tokens, as the responses report them
}

func p99(xs []float64) float64 {
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(0.99*float64(len(xs))))]
}

// bench sends the prompts through /generate (streaming, closed loop with
// conc requests in flight, like bench_serving --max-concurrency) and
// measures TTFT and TPOT as the server saw them (/sim/timings).
func bench(t *testing.T, url string, prompts [][]int, conc, outLen int) benchStats {
	t.Helper()
	if resp, err := http.Get(url + "/sim/timings?reset=1"); err == nil {
		resp.Body.Close()
	}
	work := make(chan []int)
	var mu sync.Mutex
	cached, total := 0, 0
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				b, _ := json.Marshal(map[string]any{"input_ids": p, "stream": true,
					"sampling_params": map[string]any{"max_new_tokens": outLen, "ignore_eos": true}})
				c, n := streamGenerate(t, url, string(b))
				mu.Lock()
				cached, total = cached+c, total+n
				mu.Unlock()
			}
		}()
	}
	for _, p := range prompts {
		work <- p
	}
	close(work)
	wg.Wait()
	resp, err := http.Get(url + "/sim/timings?reset=1")
	if err != nil {
		t.Fatal(err)
	}
	var timings []Timing
	_ = json.NewDecoder(resp.Body).Decode(&timings)
	resp.Body.Close()
	if len(timings) != len(prompts) {
		t.Fatalf("%d timings for %d requests", len(timings), len(prompts))
	}
	var st benchStats
	var ttft, tpot []float64
	start, end, out := timings[0].ArrivalUnixNano, int64(0), 0
	for _, tm := range timings {
		ttft = append(ttft, float64(tm.FirstTokenUnixNano-tm.ArrivalUnixNano)/1e6)
		if tm.CompletionTokens > 1 {
			tpot = append(tpot, float64(tm.FinishUnixNano-tm.FirstTokenUnixNano)/1e6/float64(tm.CompletionTokens-1))
		}
		start, end, out = min(start, tm.ArrivalUnixNano), max(end, tm.FinishUnixNano), out+tm.CompletionTokens
		st.meanTTFT += ttft[len(ttft)-1] / float64(len(timings))
	}
	st.p99TTFT, st.p99TPOT = p99(ttft), p99(tpot)
	st.outputTPS = float64(out) / (float64(end-start) / 1e9)
	st.hitRate = float64(cached) / float64(max(total, 1))
	return st
}

// TestRun_latencyGrowsWithLoad is 12.8 through HTTP: against one server
// launch (8B, --max-running-requests 16), p99 TPOT rises with concurrency
// (decode batches grow), and past the request pool throughput stops growing
// while TTFT explodes (requests queue for a running slot).
func TestRun_latencyGrowsWithLoad(t *testing.T) {
	ts := startRun(t, nil, "--max-running-requests", "16")
	ts.waitHealthy(t, 5*time.Second)
	rng := rand.New(rand.NewPCG(5, 6))
	// Real time on a shared machine: a ladder slowed by other processes is
	// measured again, up to three times.
	var failures []string
	for attempt := range 3 {
		at := map[int]benchStats{}
		for _, l := range []struct{ c, n int }{{1, 4}, {4, 8}, {16, 32}, {48, 64}} {
			at[l.c] = bench(t, ts.url, gspPrompts(rng, l.n, 1, 0, 256), l.c, 32)
			t.Logf("attempt %d, concurrency %2d: mean TTFT %6.1f ms, p99 TTFT %6.1f ms, p99 TPOT %5.2f ms, %5.0f tok/s",
				attempt+1, l.c, at[l.c].meanTTFT, at[l.c].p99TTFT, at[l.c].p99TPOT, at[l.c].outputTPS)
		}
		failures = failures[:0]
		if at[16].p99TPOT < 1.15*at[1].p99TPOT || at[16].outputTPS < 5*at[1].outputTPS {
			failures = append(failures, fmt.Sprintf("batching: p99 TPOT %.2f ms at 1 stream, %.2f ms at 16; %.0f vs %.0f tok/s",
				at[1].p99TPOT, at[16].p99TPOT, at[1].outputTPS, at[16].outputTPS))
		}
		if at[48].meanTTFT < 3*at[16].meanTTFT || at[48].outputTPS > 1.25*at[16].outputTPS {
			failures = append(failures, fmt.Sprintf("past the 16-request pool: mean TTFT %.0f ms at 16 streams, %.0f ms at 48; %.0f vs %.0f tok/s",
				at[16].meanTTFT, at[48].meanTTFT, at[16].outputTPS, at[48].outputTPS))
		}
		if len(failures) == 0 {
			return
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
}
