package runner

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
)

// BenchmarkTraceReplay measures how closely a Mooncake trace's arrival times
// are kept under load, at the server: the fake server (its own process,
// GPU-like: 50 ms to the first token, 30 ms a token) records when each
// request reached its handler, and each request's offset from the first
// one's is compared with the trace's (times the slowdown factor). The
// trace: 1,800 requests over 60 s, Poisson at 30/s with one timestamp in
// ten shared by a burst of 2–6 requests, 512–2,048 input tokens in shared
// 512-token blocks, 32–256 output tokens (about 130 streams in flight at
// slowdown 1, twice as many at 0.5). It reports, asserts nothing.
func BenchmarkTraceReplay(b *testing.B) {
	if testing.Short() {
		b.Skip("a minute of replay")
	}
	trace := writeTrace(b, 1800, 23, 1) // 23 timestamps a second, 1.3 requests each
	srv := launchFakeGPU(b, 50*time.Millisecond, 30*time.Millisecond)
	b.Logf("load average at start: %s", loadAverage())
	b.Logf("| slowdown | requests | trace span s | at the server: \\|offset error\\| median / p99 / max ms | client send: \\|offset error\\| median / p99 ms | mean TTFT ms | dialed on the clock |")
	for _, slowdown := range []float64{1, 0.5} {
		b.Run(fmt.Sprintf("slowdown=%g", slowdown), func(b *testing.B) {
			w := events.Workload{Backend: "sglang", Dataset: "mooncake", DatasetPath: trace, NumPrompts: 100000,
				MooncakeSlowdownFactor: slowdown, WarmupRequests: 4, Seed: 1, IgnoreEOS: true, VocabSize: 32000}
			fetchFakeTimings(b, srv) // reset
			prefix := fmt.Sprintf("replay-%g-", slowdown)
			res, err := loadgen.Run(context.Background(), loadgen.Options{BaseURL: srv.URL(), Workload: w,
				Timeout: 10 * time.Minute, RequestIDPrefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			server := fetchFakeTimings(b, srv)
			ds, err := loadgen.OpenDataset(w, nil)
			if err != nil {
				b.Fatal(err)
			}
			prompts, _ := ds.Prompts(0, 1)
			var srvErr, cliErr []float64
			first, ok := server[prefix+"0"]
			if !ok || !res.Requests[0].OK {
				b.Fatal("the first request has no server timing")
			}
			for i, r := range res.Requests {
				st, ok := server[r.RID]
				if !r.OK || !ok {
					continue
				}
				want := float64(prompts[i].Arrival) / 1e6
				srvErr = append(srvErr, math.Abs(float64(st.ArrivalUnixNano-first.ArrivalUnixNano)/1e6-want))
				cliErr = append(cliErr, math.Abs(float64(r.Start.Sub(res.Requests[0].Start))/1e6-want))
			}
			slices.Sort(srvErr)
			slices.Sort(cliErr)
			b.ReportMetric(loadgen.Percentile(srvErr, 50), "median_err_ms")
			b.ReportMetric(loadgen.Percentile(srvErr, 99), "p99_err_ms")
			span := float64(prompts[len(prompts)-1].Arrival) / 1e9
			b.Logf("| %g | %d | %.1f | %.2f / %.2f / %.2f | %.2f / %.2f | %.1f | %d |", slowdown, len(srvErr), span,
				loadgen.Percentile(srvErr, 50), loadgen.Percentile(srvErr, 99), srvErr[len(srvErr)-1],
				loadgen.Percentile(cliErr, 50), loadgen.Percentile(cliErr, 99), res.Metrics["mean_ttft_ms"], res.Dialed)
		})
	}
	b.Logf("load average at end: %s", loadAverage())
}

// writeTrace writes a synthetic Mooncake trace of n requests at about rate
// per second.
func writeTrace(tb testing.TB, n int, rate float64, seed uint64) string {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	ts, nextHash := 0.0, 0
	prefixes := [][]int{} // a few popular shared prefixes of 1–3 blocks
	for i := 0; i < 8; i++ {
		k := 1 + rng.IntN(3)
		p := make([]int, k)
		for j := range p {
			p[j] = nextHash
			nextHash++
		}
		prefixes = append(prefixes, p)
	}
	for i := 0; i < n; {
		burst := 1
		if rng.IntN(10) == 0 {
			burst = 2 + rng.IntN(5)
		}
		for j := 0; j < burst && i < n; j++ {
			in := 512 + rng.IntN(1537)
			blocks := (in + 511) / 512
			ids := append([]int(nil), prefixes[rng.IntN(len(prefixes))]...)
			for len(ids) < blocks {
				ids = append(ids, nextHash)
				nextHash++
			}
			fmt.Fprintf(&b, `{"timestamp": %d, "input_length": %d, "output_length": %d, "hash_ids": [%s]}`+"\n",
				int64(ts), in, 32+rng.IntN(225), strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids[:blocks])), ","), "[]"))
			i++
		}
		ts += rng.ExpFloat64() / rate * 1000
	}
	p := filepath.Join(tb.TempDir(), "trace.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
