package runner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
	"github.com/sgtune/sgtune/services/runner/internal/loadgen"
	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// fetchSimTimings fetches (and resets) the simulator's own timing of each
// request (GET /sim/timings, the same entries as the fake server's).
func fetchSimTimings(tb testing.TB, srv *sglang.Server) map[string]fakeserver.Timing {
	tb.Helper()
	return fetchTimings(tb, srv, "/sim/timings")
}

// fidelity compares the load generator's TTFT of each request with the
// server's own (first token written minus request arrival, as the simulator
// records it).
type fidelity struct {
	n                        int
	medAbsMs, p99AbsMs       float64 // |client - server| TTFT
	medRel, p99Rel           float64 // |client - server| / server TTFT
	clientMedMs, serverMedMs float64 // median TTFTs
	clientCores, serverCores float64 // CPU time / wall time during the measured run
	outTokPerS               float64
	// Where the difference arises: the client writing the request (send to
	// last byte written), the server taking it in (last byte written by the
	// client... approximated by client send to server arrival), and the
	// client reading the first token (server write to client read).
	writeP99Ms                 float64
	ingressMedMs, ingressP99Ms float64
	readMedMs, readP99Ms       float64
}

// BenchmarkLoadgenFidelity measures, against `sgtune sim` in its own process,
// how far the load generator's TTFT is from the server's own timing of the
// same request at 64, 256 and 512 concurrent streams, and how much CPU the
// client uses. Run with -benchtime=1x (make bench); it reports, it asserts nothing.
func BenchmarkLoadgenFidelity(b *testing.B) {
	if testing.Short() {
		b.Skip("launches the simulator")
	}
	srv := launchSim(b)
	for _, streams := range []int{64, 256, 512} {
		b.Run("streams="+strconv.Itoa(streams), func(b *testing.B) {
			var f fidelity
			for i := range b.N {
				f = measureFidelity(b, srv, streams, i)
			}
			b.ReportMetric(f.medAbsMs, "med_abs_err_ms")
			b.ReportMetric(f.p99AbsMs, "p99_abs_err_ms")
			b.ReportMetric(100*f.medRel, "med_rel_err_%")
			b.ReportMetric(100*f.p99Rel, "p99_rel_err_%")
			b.ReportMetric(f.serverMedMs, "server_med_ttft_ms")
			b.ReportMetric(f.clientCores, "client_cpu_cores")
			b.ReportMetric(f.serverCores, "server_cpu_cores")
			b.ReportMetric(f.outTokPerS, "out_tok/s")
			b.ReportMetric(f.readP99Ms, "p99_read_lag_ms")
			// The docs/benchmarks.md row: streams, requests, server and client median TTFT,
			// |error| median and p99 (ms, %), client write p99, send->arrival median/p99,
			// server write->client read median/p99, client and server CPU cores, output tok/s.
			b.Logf("| %d | %d | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f / %.2f | %.3f / %.3f | %.3f | %.3f | %.0f |",
				streams, f.n, f.serverMedMs, f.clientMedMs, f.medAbsMs, f.p99AbsMs, 100*f.medRel, 100*f.p99Rel,
				f.writeP99Ms, f.ingressMedMs, f.ingressP99Ms, f.readMedMs, f.readP99Ms, f.clientCores, f.serverCores, f.outTokPerS)
		})
	}
}

func measureFidelity(b *testing.B, srv *sglang.Server, streams, iter int) fidelity {
	b.Helper()
	w := events.Workload{
		Backend: "sglang", Dataset: "random-ids", NumPrompts: 2 * streams, RandomInputLen: 256,
		RandomOutputLen: 128, RandomRangeRatio: 1, MaxConcurrency: streams,
		WarmupRequests: streams, // opens every connection before the clock starts
		Seed:           int64(streams + iter), IgnoreEOS: true,
	}
	fetchSimTimings(b, srv) // reset: forget the warm-ups of earlier runs
	prefix := fmt.Sprintf("fid-%d-%d-", streams, iter)
	// The warm-up is not counted; its requests carry no rid, the measured ones do.
	cpu0, srvCPU0, t0 := selfCPU(), processCPU(srv.PGID()), time.Now()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		BaseURL: srv.URL(), Workload: w, Timeout: 5 * time.Minute, RequestIDPrefix: prefix,
	})
	wall := time.Since(t0)
	cpu, srvCPU := selfCPU()-cpu0, processCPU(srv.PGID())-srvCPU0
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	server := fetchSimTimings(b, srv)
	var abs, rel, cli, ser, sendOff, recvOff, writeT []float64
	for _, r := range res.Requests {
		st, ok := server[r.RID]
		if !r.OK || !ok {
			continue
		}
		serverTTFT := float64(st.FirstTokenUnixNano-st.ArrivalUnixNano) / 1e6
		clientTTFT := float64(r.TTFT) / 1e6
		d := math.Abs(clientTTFT - serverTTFT)
		abs, cli, ser = append(abs, d), append(cli, clientTTFT), append(ser, serverTTFT)
		sendOff = append(sendOff, float64(st.ArrivalUnixNano-r.Start.UnixNano())/1e6)
		writeT = append(writeT, float64(r.Sent.Sub(r.Start))/1e6)
		recvOff = append(recvOff, float64(r.Start.Add(r.TTFT).UnixNano()-st.FirstTokenUnixNano)/1e6)
		if serverTTFT > 0 {
			rel = append(rel, d/serverTTFT)
		}
	}
	if len(abs) < len(res.Requests)*9/10 {
		b.Fatalf("only %d of %d requests matched the server's timings", len(abs), len(res.Requests))
	}
	for _, xs := range [][]float64{abs, rel, cli, ser, sendOff, recvOff, writeT} {
		slices.Sort(xs)
	}
	return fidelity{
		writeP99Ms:   loadgen.Percentile(writeT, 99),
		ingressMedMs: loadgen.Percentile(sendOff, 50), ingressP99Ms: loadgen.Percentile(sendOff, 99),
		readMedMs: loadgen.Percentile(recvOff, 50), readP99Ms: loadgen.Percentile(recvOff, 99),
		n:        len(abs),
		medAbsMs: loadgen.Percentile(abs, 50), p99AbsMs: loadgen.Percentile(abs, 99),
		medRel: loadgen.Percentile(rel, 50), p99Rel: loadgen.Percentile(rel, 99),
		clientMedMs: loadgen.Percentile(cli, 50), serverMedMs: loadgen.Percentile(ser, 50),
		clientCores: cpu.Seconds() / wall.Seconds(), serverCores: srvCPU.Seconds() / wall.Seconds(),
		outTokPerS: res.Metrics["output_throughput"],
	}
}
