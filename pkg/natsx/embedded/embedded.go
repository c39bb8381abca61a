// Package embedded runs a nats-server with JetStream inside the process: the
// default of `sgtune up` and the server of `sgtune nats`.
package embedded

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the embedded server.
type Options struct {
	// Host and Port to listen on; Port -1 picks a free port.
	Host string
	Port int
	// StoreDir is JetStream's file store.
	StoreDir string
	// HTTPPort serves /healthz and monitoring when > 0.
	HTTPPort int
	// ServerName names the server (default "sgtune").
	ServerName string
	// User and Password, when set, are required of clients.
	User, Password string
	// Logs enables the server's own log lines on stderr.
	Logs bool
	// SyncAlways fsyncs every write before it is acknowledged (JetStream's
	// sync_interval: always), so an acknowledged message survives a power
	// loss, not only a process kill. sgtune nats and sgtune up turn it on
	// unless --sync=false; docs/benchmarks.md measures its cost.
	SyncAlways bool
}

// Start runs the server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("start embedded NATS: a store directory is required")
	}
	name := o.ServerName
	if name == "" {
		name = "sgtune"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       o.Host,
		Port:       o.Port,
		HTTPPort:   o.HTTPPort,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      !o.Logs,
		Username:   o.User,
		Password:   o.Password,
		SyncAlways: o.SyncAlways,
		// Trial results and specs are small; a front document can grow, so allow 8 MiB.
		MaxPayload: 8 << 20,
	}
	if o.HTTPPort > 0 {
		opts.HTTPHost = o.Host
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	if o.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("start embedded NATS: not ready after 30s")
	}
	return s, nil
}
