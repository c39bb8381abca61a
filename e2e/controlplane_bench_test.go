package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

// BenchmarkProposalToClaim measures the control plane (DESIGN §7: ≤ 20 ms
// median): from the sampler publishing a proposal, through the validator's
// rules and queueing, to a runner's pull of the trial from its GPU class.
// Each iteration proposes one distinct valid config and waits for its claim.
func BenchmarkProposalToClaim(b *testing.B) {
	srv := natstest.RunServer(b)
	_, js := natstest.Connect(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	spec := study.Default()
	spec.StudyName = "cp"
	spec.NTrials = 1 << 30
	specJSON, err := spec.ToJSON()
	if err != nil {
		b.Fatal(err)
	}
	kv, err := natsx.KV(ctx, js, events.BucketStudies)
	if err != nil {
		b.Fatal(err)
	}
	started := time.Now()
	if err := natsx.PutJSON(ctx, kv, "cp", events.StudyState{Study: "cp", Spec: specJSON, NTrials: spec.NTrials, Status: events.StudyRunning, StartedAt: started}); err != nil {
		b.Fatal(err)
	}
	vcfg := validator.Config{NATS: natsx.ConnConfig{URL: srv.ClientURL()}}.Defaults()
	go func() { _ = validator.Run(ctx, vcfg, zerolog.Nop()) }()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTrials, jetstream.ConsumerConfig{
		Durable: events.TrialsDurable(1), FilterSubject: events.TrialsOfClass(1),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	// Distinct valid 1-GPU configs: vary the parameters the seed rules leave alone.
	policies := []any{"fcfs", "lpm", "random", "dfs-weight", "lof"}
	steps := []any{1, 2, 4, 8, 16}
	workers := []any{1, 2, 4, 8, 16}
	prefill := []any{4096, 8192, 16384, 32768, 65536}
	params := func(i int) events.Params {
		return events.Params{
			"tp_size": 1, "dp_size": 1, "pp_size": 1,
			"schedule_policy":             policies[i%5],
			"num_continuous_decode_steps": steps[(i/5)%5],
			"tokenizer_worker_num":        workers[(i/25)%5],
			"max_prefill_tokens":          prefill[(i/125)%5],
		}
	}
	if b.N > 625 {
		b.N = 625 // distinct configs available; enough for a stable median
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		ev := events.CandidateProposed{
			Envelope: events.NewEnvelope(events.TypeCandidateProposed, "cp", i, time.Now()).In(events.IncarnationOf(started)),
			Params:   params(i), Sampler: "bench",
		}
		t0 := time.Now()
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject("cp", i), ev); err != nil {
			b.Fatal(err)
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			b.Fatalf("trial %d never reached the queue: %v", i, err)
		}
		lat = append(lat, time.Since(t0))
		_ = msg.Ack()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
