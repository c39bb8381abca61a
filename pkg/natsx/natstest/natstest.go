// Package natstest runs an embedded JetStream server for tests. Import it only
// from _test.go files.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/natsx"
)

// storeDirs remembers each server's store directory for RestartServer.
var storeDirs sync.Map

// RunServer starts a JetStream server on a random port with its store in a
// temporary directory, shut down and removed when the test ends.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return start(t, -1, t.TempDir())
}

func start(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "sgtune-test",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server not ready")
	}
	storeDirs.Store(s, dir)
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// RestartServer shuts s down and starts a new server on the same port and store
// directory: what a crash and restart of NATS looks like to clients.
func RestartServer(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	v, ok := storeDirs.Load(s)
	if !ok {
		t.Fatalf("RestartServer: server was not started by natstest")
	}
	port := s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	s.WaitForShutdown()
	return start(t, port, v.(string))
}

// Connect opens a client to s with the sgtune topology ensured; both are closed
// when the test ends.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := natsx.EnsureTopology(ctx, js, natsx.Topology{}); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return nc, js
}

// URL is the client URL of s.
func URL(s *server.Server) string { return s.ClientURL() }

// RunCluster starts a JetStream cluster of n servers on random ports, routed
// to each other, and waits until it has a meta leader; each server is shut
// down when the test ends (Shutdown on one of them is how a test loses a node).
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)}
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		opts := &server.Options{
			ServerName: fmt.Sprintf("sgtune-test-%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 8 << 20,
			Cluster:    server.ClusterOpts{Name: "sgtune-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("start nats-server %d of the cluster: %v", i+1, err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers[i] = s
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %s not ready", s.Name())
		}
	}
	for time.Now().Before(deadline) {
		ready := true
		for _, s := range servers {
			if s.JetStreamIsClustered() && s.JetStreamIsCurrent() && s.NumRoutes() >= n-1 {
				continue
			}
			ready = false
		}
		if ready && anyLeader(servers) {
			return servers
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the %d-node cluster has no JetStream meta leader after 30 s", n)
	return nil
}

func anyLeader(servers []*server.Server) bool {
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// ClusterURL is a client URL naming every server of a cluster, so a client
// reconnects to a survivor when one is lost.
func ClusterURL(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
