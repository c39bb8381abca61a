package embedded_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

func start(tb testing.TB, syncAlways bool) (*nats.Conn, jetstream.JetStream, func()) {
	tb.Helper()
	srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: tb.TempDir(), SyncAlways: syncAlways})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		tb.Fatal(err)
	}
	return nc, js, func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() }
}

// The durable default: a message acknowledged by the embedded server was
// written with sync_interval always (checked through the server's own
// configuration, since a power loss cannot be simulated here).
func TestStart_SyncAlways_reaches_JetStream(t *testing.T) {
	t.Parallel()
	for _, want := range []bool{true, false} {
		srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), SyncAlways: want})
		if err != nil {
			t.Fatal(err)
		}
		got := srv.JetStreamConfig().SyncAlways
		srv.Shutdown()
		srv.WaitForShutdown()
		if got != want {
			t.Fatalf("SyncAlways %v: JetStream runs with %v", want, got)
		}
	}
}

// BenchmarkOutcomes measures recorded outcomes per second (PublishOnce on
// per-trial subjects, as runners and the validator record them) with and
// without fsync on every write, one publisher and 16 at once.
// make bench-durability; docs/benchmarks.md quotes it.
func BenchmarkOutcomes(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync bool
	}{{"sync=default", false}, {"sync=always", true}} {
		for _, publishers := range []int{1, 16} {
			b.Run(mode.name+"/publishers="+itoa(publishers), func(b *testing.B) {
				_, js, stop := start(b, mode.sync)
				defer stop()
				var next atomic.Int64
				ctx := context.Background()
				b.ResetTimer()
				var wg sync.WaitGroup
				for range publishers {
					wg.Go(func() {
						for {
							n := int(next.Add(1))
							if n > b.N {
								return
							}
							res := events.TrialResult{
								Envelope: events.NewEnvelope(events.TypeTrialResult, "bench", n, time.Now()),
								State:    events.StateComplete, Metrics: map[string]float64{"mean_ttft_ms": 20, "output_throughput": 4000},
							}
							if err := natsx.PublishOnce(ctx, js, events.OutcomeSubject("bench", n), res); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "outcomes/s")
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
