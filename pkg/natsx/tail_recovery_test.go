package natsx_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// A tail on a three-node cluster keeps delivering when the node leading its
// stream, the one its client is connected to, is lost: the study's outcome
// feed went silent this way (the sampler reconnected and saw no outcome again
// while runners kept recording them).
func TestTailFollowsAcrossTheLossOfTheStreamLeader(t *testing.T) {
	servers := natstest.RunCluster(t, 3)
	ctx := ctxT(t)
	connect := func(urls string) jetstream.JetStream {
		t.Helper()
		nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.DontRandomize())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	admin := connect(natstest.ClusterURL(servers))
	eventuallyWithin(t, time.Minute, "the topology at three replicas", func() bool {
		return natsx.EnsureTopology(ctx, admin, natsx.Topology{Replicas: 3}) == nil
	})
	s, err := admin.Stream(ctx, events.StreamCandidates)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	var leader *server.Server
	var urls []string
	for _, srv := range servers {
		if srv.Name() == info.Cluster.Leader {
			leader = srv
			urls = append([]string{srv.ClientURL()}, urls...)
		} else {
			urls = append(urls, srv.ClientURL())
		}
	}
	if leader == nil {
		t.Fatalf("no server named %q leads %s", info.Cluster.Leader, events.StreamCandidates)
	}
	js := connect(strings.Join(urls, ","))
	publish := func(trial int) {
		t.Helper()
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := natsx.Publish(pctx, admin, events.CandidateSubject("a", trial), proposal("a", trial))
			cancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // a new leader is being elected
		}
	}
	for trial := range 3 {
		publish(trial)
	}
	rec := startTail(ctx, js)
	count := rec.count
	eventually(t, "the stored messages", func() bool { return count() == 3 })

	leader.Shutdown()
	leader.WaitForShutdown()
	for trial := 3; trial < 8; trial++ {
		publish(trial)
	}
	// A new leader, the consumer made again: seconds, more on a loaded machine.
	eventuallyWithin(t, time.Minute, fmt.Sprintf("8 messages after the loss of %s", info.Cluster.Leader), func() bool { return count() >= 8 })
	rec.stopAndCheck(t, 8)
}

// A tail whose consumer goes quiet while its heartbeats keep coming (here:
// paused on the server) notices that the stream has moved on and follows
// again from the next message, delivering each once.
func TestTailFollowsPastAQuietConsumer(t *testing.T) {
	defer natsx.SetTailStall(100*time.Millisecond, 500*time.Millisecond)()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	publish := func(trial int) {
		t.Helper()
		if _, err := natsx.Publish(ctx, js, events.CandidateSubject("a", trial), proposal("a", trial)); err != nil {
			t.Fatal(err)
		}
	}
	for trial := range 3 {
		publish(trial)
	}
	rec := startTail(ctx, js)
	count := rec.count
	eventually(t, "the stored messages", func() bool { return count() == 3 })
	if rs := rec.restarted(); len(rs) != 0 {
		t.Fatalf("restarts reported before any trouble: %+v", rs)
	}

	s, err := js.Stream(ctx, events.StreamCandidates)
	if err != nil {
		t.Fatal(err)
	}
	paused := 0
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if _, err := s.PauseConsumer(ctx, name, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("pause consumer %s: %v", name, err)
		}
		paused++
	}
	if err := names.Err(); err != nil || paused == 0 {
		t.Fatalf("paused %d consumers (%v), want the tail's", paused, err)
	}
	for trial := 3; trial < 5; trial++ {
		publish(trial)
	}
	eventually(t, "the messages published while the consumer was paused", func() bool { return count() >= 5 })
	rec.stopAndCheck(t, 5)
	// The restart is reported, with why and where it followed again from.
	rs := rec.restarted()
	if len(rs) == 0 || !strings.HasPrefix(rs[0].Reason, "stalled") || rs[0].From != 4 || rs[0].Stream != events.StreamCandidates {
		t.Fatalf("restarts reported: %+v, want the first stalled, from sequence 4 of %s", rs, events.StreamCandidates)
	}
}

// tailRecord is a Tail of study a's candidates running in the background,
// counting the deliveries of each stream sequence.
type tailRecord struct {
	mu       sync.Mutex
	seqs     map[uint64]int
	restarts []natsx.TailRestart
	stop     context.CancelFunc
	done     chan error
}

func startTail(ctx context.Context, js jetstream.JetStream) *tailRecord {
	tctx, stop := context.WithCancel(ctx)
	r := &tailRecord{seqs: map[uint64]int{}, stop: stop, done: make(chan error, 1)}
	go func() {
		r.done <- natsx.Tail(tctx, js, events.StreamCandidates, events.CandidatesOfStudy("a"),
			func(_ []byte, m natsx.Meta) error {
				r.mu.Lock()
				r.seqs[m.StreamSeq]++
				r.mu.Unlock()
				return nil
			}, nil, natsx.OnTailRestart(func(rs natsx.TailRestart) {
				r.mu.Lock()
				r.restarts = append(r.restarts, rs)
				r.mu.Unlock()
			}))
	}()
	return r
}

func (r *tailRecord) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.seqs) }

func (r *tailRecord) restarted() []natsx.TailRestart {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.restarts)
}

// stopAndCheck checks that Tail was still running, stops it, and checks
// that it delivered want messages, each once.
func (r *tailRecord) stopAndCheck(t *testing.T, want int) {
	t.Helper()
	select {
	case err := <-r.done:
		t.Fatalf("Tail returned before its context ended: %v", err)
	default:
	}
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq, n := range r.seqs {
		if n != 1 {
			t.Errorf("stream sequence %d delivered %d times", seq, n)
		}
	}
	if len(r.seqs) != want {
		t.Fatalf("delivered %d messages, want %d", len(r.seqs), want)
	}
}
