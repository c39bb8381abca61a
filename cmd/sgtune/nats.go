package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

// cmdNATS runs the embedded JetStream server alone, so separate service
// processes (or hosts) can share it: sgtune nats --listen 0.0.0.0:4222 --data-dir /data.
func cmdNATS(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nats", stderr)
	listen := fs.String("listen", envOr(getenv, "SGTUNE_NATS_LISTEN", "127.0.0.1:4222"), "address to listen on for clients")
	dataDir := fs.String("data-dir", envOr(getenv, "SGTUNE_DATA_DIR", "./.sgtune"), "JetStream file store directory")
	httpPort := fs.Int("http-port", 0, "monitoring port serving /healthz (0: off)")
	logs := fs.Bool("logs", true, "print the server's log")
	syncAlways := fs.Bool("sync", envOr(getenv, "SGTUNE_NATS_SYNC", "true") != "false", "fsync every write before acknowledging it (survives power loss; false: the OS flushes, survives process kills only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageError("--listen %q: want HOST:PORT", *listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return usageError("--listen %q: bad port", *listen)
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	password := getenv("NATS_PASSWORD")
	if f := getenv("NATS_PASSWORD_FILE"); f != "" && password == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read NATS_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	if (getenv("NATS_USER") == "") != (password == "") {
		return usageError("NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE) go together")
	}
	srv, err := embedded.Start(embedded.Options{
		Host: host, Port: port, StoreDir: *dataDir, HTTPPort: *httpPort, Logs: *logs,
		User: getenv("NATS_USER"), Password: password, SyncAlways: *syncAlways,
	})
	if err != nil {
		return err
	}
	durability := "every write fsynced before it is acknowledged"
	if !*syncAlways {
		durability = "writes flushed by the OS (--sync=false: survives a process kill, not a power loss)"
	}
	fmt.Fprintf(stderr, "sgtune nats: JetStream listening on %s (store %s; %s)\n", srv.ClientURL(), *dataDir, durability)
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
