package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// BenchmarkLoadgenFidelityGPULoad measures the load generator's mean TTFT
// against the server's own at 256 and 512 streams with `sgtune bench`'s
// default flags, and at 64 with a default study's trial workload (1000 prompts, random ids, 1024 input / up to 1024 output
// tokens, range ratio 0, one warm-up request) on a load shaped like a GPU's:
// the fake server (internal/fakeserver, its own process, independent of
// sglang-sim's model) answers every request's first token after 50 ms and
// then one token every 30 ms, and records when each request reached its
// handler and when its first token was flushed (GET /fake/timings).
// Side by side, alternating, in one run: the default (every stream's
// connection opened before the clock, the first wave sent as the server
// takes it), the first wave in one burst, and each connection opened by its
// stream's first measured request in one burst (the client before issue 9,
// and bench_serving). SGTUNE_FIDELITY_RUNS sets the runs
// per configuration (default 3), SGTUNE_FIDELITY_STREAMS (e.g. "256,512")
// only sgtune bench's defaults at those streams, SGTUNE_FIDELITY_MODES (e.g.
// "paced,burst") the modes; SGTUNE_FIDELITY_SERVER=sim measures against
// sglang-sim on its real clock instead, =python against an asyncio stand-in
// (testdata/fidelity_standin.py). It reports medians over runs and
// asserts nothing.
func BenchmarkLoadgenFidelityGPULoad(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes of GPU-like streaming")
	}
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("SGTUNE_FIDELITY_RUNS")); err == nil && n > 0 {
		runs = n
	}
	srv, timings := fidelityServer(b)
	b.Logf("load average at start: %s", loadAverage())
	b.Logf("| workload | streams | connections | runs | server mean TTFT ms | client mean TTFT ms | client − server ms (median, min–max) | client − server %% | send → handler median / p99 ms | flush → client read median / p99 ms | client pool wait p99 / write p99 ms | client / server CPU cores | dialed on the clock | client − server first wave / later ms | first wave sent over ms |")
	configs := fidelityConfigs(b)
	modes := []string{"paced", "burst", "on-demand"}
	if v := os.Getenv("SGTUNE_FIDELITY_MODES"); v != "" {
		modes = strings.Split(v, ",")
		for _, m := range modes {
			if m != "paced" && m != "burst" && m != "on-demand" {
				b.Fatalf("SGTUNE_FIDELITY_MODES: %q is not paced, burst or on-demand", m)
			}
		}
	}
	for _, cfg := range configs {
		streams := cfg.streams
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/streams=%d/%s", cfg.name, streams, mode), func(b *testing.B) {
				var rs []gpuFidelity
				for i := range runs {
					w := cfg.w
					w.Seed = int64(1 + i)
					rs = append(rs, measureGPUFidelity(b, srv, timings, w, fmt.Sprintf("%s-%d-%d-%s-", cfg.name, streams, i, mode), mode))
				}
				med := func(f func(gpuFidelity) float64) float64 {
					xs := make([]float64, len(rs))
					for i, r := range rs {
						xs[i] = f(r)
					}
					slices.Sort(xs)
					return loadgen.Percentile(xs, 50)
				}
				diff := func(r gpuFidelity) float64 { return r.clientMeanMs - r.serverMeanMs }
				lo, hi := diff(rs[0]), diff(rs[0])
				for _, r := range rs {
					lo, hi = min(lo, diff(r)), max(hi, diff(r))
				}
				b.ReportMetric(med(diff), "mean_ttft_err_ms")
				b.ReportMetric(med(func(r gpuFidelity) float64 { return r.serverMeanMs }), "server_mean_ttft_ms")
				b.Logf("| %s | %d | %s | %d | %.2f | %.2f | %+.2f (%+.2f – %+.2f) | %+.2f %% | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.0f | %+.2f / %+.2f | %.1f |",
					cfg.name, streams, mode, len(rs), med(func(r gpuFidelity) float64 { return r.serverMeanMs }),
					med(func(r gpuFidelity) float64 { return r.clientMeanMs }), med(diff), lo, hi,
					med(func(r gpuFidelity) float64 { return 100 * diff(r) / r.serverMeanMs }),
					med(func(r gpuFidelity) float64 { return r.ingressMedMs }), med(func(r gpuFidelity) float64 { return r.ingressP99Ms }),
					med(func(r gpuFidelity) float64 { return r.readMedMs }), med(func(r gpuFidelity) float64 { return r.readP99Ms }),
					med(func(r gpuFidelity) float64 { return r.poolP99Ms }), med(func(r gpuFidelity) float64 { return r.writeP99Ms }),
					med(func(r gpuFidelity) float64 { return r.clientCores }), med(func(r gpuFidelity) float64 { return r.serverCores }),
					med(func(r gpuFidelity) float64 { return float64(r.dialed) }),
					med(func(r gpuFidelity) float64 { return r.firstWaveErr }), med(func(r gpuFidelity) float64 { return r.laterErr }),
					med(func(r gpuFidelity) float64 { return r.waveSpreadMs }))
			})
		}
	}
	b.Logf("load average at end: %s", loadAverage())
}

// fidelityServer launches the stand-in SGTUNE_FIDELITY_SERVER names: the
// fake server (default), "sim" or "python".
func fidelityServer(b *testing.B) (*sglang.Server, serverTimings) {
	switch v := os.Getenv("SGTUNE_FIDELITY_SERVER"); v {
	case "":
		return launchFakeGPU(b, 50*time.Millisecond, 30*time.Millisecond), fetchFakeTimings
	case "sim":
		// Another stand-in: sglang-sim on its real clock (Llama-3.1-8B on a
		// simulated H100), whose TTFT grows with the load it is given.
		return launchSimWaiting(b, 10*time.Minute, "SGTUNE_SIM_TIME_SCALE=1"), fetchSimTimings
	case "python":
		// And one outside Go's HTTP stack: asyncio on one event loop, as
		// uvicorn serves SGLang (testdata/fidelity_standin.py).
		return launchPythonStandin(b, 50*time.Millisecond, 30*time.Millisecond), fetchFakeTimings
	default:
		b.Fatalf("SGTUNE_FIDELITY_SERVER=%q: want sim or python (or unset: the fake server)", v)
		return nil, nil
	}
}

// fidelityConfig is one workload of the benchmark.
type fidelityConfig struct {
	name    string
	streams int
	w       events.Workload
}

// fidelityConfigs are sgtune bench's defaults at 256 and 512 streams and a
// default study's trial workload (64 streams, 4 warm-ups, 1024 in / 256
// out), or sgtune bench's defaults at SGTUNE_FIDELITY_STREAMS.
func fidelityConfigs(b *testing.B) []fidelityConfig {
	v := os.Getenv("SGTUNE_FIDELITY_STREAMS")
	if v == "" {
		return []fidelityConfig{{"bench", 256, benchDefaults(256)}, {"bench", 512, benchDefaults(512)}, {"study", 64, study.Default().Workload}}
	}
	var configs []fidelityConfig
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("SGTUNE_FIDELITY_STREAMS: %v", err)
		}
		configs = append(configs, fidelityConfig{"bench", n, benchDefaults(n)})
	}
	return configs
}

type gpuFidelity struct {
	clientMeanMs, serverMeanMs float64
	ingressMedMs, ingressP99Ms float64 // client send -> server handler
	readMedMs, readP99Ms       float64 // server flush -> client read
	poolP99Ms, writeP99Ms      float64 // client: waiting for the connection, writing the request
	clientCores, serverCores   float64 // CPU time / wall time
	dialed                     int
	firstWaveErr, laterErr     float64 // mean client − server ms: first wave, later requests
	waveSpreadMs               float64 // the first wave's first send to its last
}

// benchDefaults is sgtune bench's default workload at n streams.
func benchDefaults(n int) events.Workload {
	return events.Workload{
		Backend: "sglang", Dataset: "random-ids", NumPrompts: 1000, RandomInputLen: 1024, RandomOutputLen: 1024,
		RandomRangeRatio: 0, MaxConcurrency: n, WarmupRequests: 1, IgnoreEOS: true, VocabSize: 32000,
	}
}

// measureGPUFidelity runs w once in mode: "paced" (the default: connections
// opened before the clock, the first wave sent as the server takes it),
// "burst" (opened before the clock, the first wave at once) or "on-demand"
// (each stream dials on its first measured request, all at once: the client
// before issue 9, and bench_serving).
func measureGPUFidelity(b *testing.B, srv *sglang.Server, timings serverTimings, w events.Workload, prefix string, mode string) gpuFidelity {
	b.Helper()
	timings(b, srv) // reset
	cpu0, srvCPU0, t0 := selfCPU(), processCPU(srv.PGID()), time.Now()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		BaseURL: srv.URL(), Workload: w, Timeout: 10 * time.Minute, RequestIDPrefix: prefix,
		NoPreopen: mode == "on-demand", Burst: mode != "paced",
	})
	wall := time.Since(t0)
	cpu, srvCPU := selfCPU()-cpu0, processCPU(srv.PGID())-srvCPU0
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	server := timings(b, srv)
	var cli, ser, ingress, read, pool, write []float64
	var waveErr [2][]float64 // client − server: the first wave (one request per stream), the rest
	var waveFirst, waveLast time.Time
	for i, r := range res.Requests {
		if i < w.MaxConcurrency && !r.Start.IsZero() {
			if waveFirst.IsZero() || r.Start.Before(waveFirst) {
				waveFirst = r.Start
			}
			if r.Start.After(waveLast) {
				waveLast = r.Start
			}
		}
		st, ok := server[r.RID]
		if !r.OK || !ok {
			continue
		}
		cli = append(cli, float64(r.TTFT)/1e6)
		ser = append(ser, float64(st.FirstTokenUnixNano-st.ArrivalUnixNano)/1e6)
		ingress = append(ingress, float64(st.ArrivalUnixNano-r.Start.UnixNano())/1e6)
		read = append(read, float64(r.Start.Add(r.TTFT).UnixNano()-st.FirstTokenUnixNano)/1e6)
		pool = append(pool, float64(r.GotConn.Sub(r.Start))/1e6)
		write = append(write, float64(r.Sent.Sub(r.GotConn))/1e6)
		wave := 1
		if i < w.MaxConcurrency {
			wave = 0
		}
		waveErr[wave] = append(waveErr[wave], cli[len(cli)-1]-ser[len(ser)-1])
	}
	if len(cli) < len(res.Requests)*9/10 {
		b.Fatalf("only %d of %d requests matched the server's timings", len(cli), len(res.Requests))
	}
	for _, xs := range [][]float64{ingress, read, pool, write} {
		slices.Sort(xs)
	}
	return gpuFidelity{
		clientMeanMs: loadgen.Mean(cli), serverMeanMs: loadgen.Mean(ser),
		ingressMedMs: loadgen.Percentile(ingress, 50), ingressP99Ms: loadgen.Percentile(ingress, 99),
		readMedMs: loadgen.Percentile(read, 50), readP99Ms: loadgen.Percentile(read, 99),
		poolP99Ms: loadgen.Percentile(pool, 99), writeP99Ms: loadgen.Percentile(write, 99),
		clientCores: cpu.Seconds() / wall.Seconds(), serverCores: srvCPU.Seconds() / wall.Seconds(),
		dialed:       res.Dialed,
		firstWaveErr: loadgen.Mean(waveErr[0]), laterErr: loadgen.Mean(waveErr[1]),
		waveSpreadMs: float64(waveLast.Sub(waveFirst)) / 1e6,
	}
}

// launchFakeGPU starts the fake server (this test binary) as its own
// process with a fixed time to first token and inter-token gap.
func launchFakeGPU(tb testing.TB, ttft, itl time.Duration) *sglang.Server {
	tb.Helper()
	return launchFake(tb, map[string]string{"SGTUNE_FAKE_TTFT": ttft.String(), "SGTUNE_FAKE_ITL": itl.String()})
}

// launchFake starts the fake server with env (SGTUNE_FAKE_*) and waits until
// it is healthy; it is stopped at cleanup.
func launchFake(tb testing.TB, env map[string]string) *sglang.Server {
	tb.Helper()
	return launchStandin(tb, fakeserver.Command(), fakeserver.Env("healthy", env))
}

// launchPythonStandin starts testdata/fidelity_standin.py with python3.
func launchPythonStandin(tb testing.TB, ttft, itl time.Duration) *sglang.Server {
	tb.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "fidelity_standin.py"))
	if err != nil {
		tb.Fatal(err)
	}
	return launchStandin(tb, []string{"python3", script},
		[]string{fmt.Sprintf("STANDIN_TTFT_MS=%d", ttft.Milliseconds()), fmt.Sprintf("STANDIN_ITL_MS=%d", itl.Milliseconds())})
}

// launchStandin starts command as a server with the runner's launch code
// and waits until it is healthy; it is stopped at cleanup.
func launchStandin(tb testing.TB, command, env []string) *sglang.Server {
	tb.Helper()
	var ports sglang.Ports
	port, err := ports.Pick()
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := sglang.Launch(context.Background(), sglang.LaunchSpec{
		Command: command, Port: port, GPUs: []int{0}, Env: env,
		LogPath: filepath.Join(tb.TempDir(), "standin.log"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Stop(10 * time.Second) })
	if _, err := srv.WaitHealthy(context.Background(), time.Minute); err != nil {
		tb.Fatalf("stand-in not healthy: %v\n%s", err, srv.Tail(2048))
	}
	return srv
}

// serverTimings fetches (and resets) a stand-in's own timing of each request.
type serverTimings func(testing.TB, *sglang.Server) map[string]fakeserver.Timing

func fetchFakeTimings(tb testing.TB, srv *sglang.Server) map[string]fakeserver.Timing {
	tb.Helper()
	return fetchTimings(tb, srv, "/fake/timings")
}

// fetchTimings reads a stand-in's per-request timings at path and resets them.
func fetchTimings(tb testing.TB, srv *sglang.Server, path string) map[string]fakeserver.Timing {
	tb.Helper()
	resp, err := http.Get(srv.URL() + path + "?reset=1")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var ts []fakeserver.Timing
	if err := json.NewDecoder(resp.Body).Decode(&ts); err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]fakeserver.Timing, len(ts))
	for _, t := range ts {
		out[t.RID] = t
	}
	return out
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return string(b[:len(b)-1])
}
