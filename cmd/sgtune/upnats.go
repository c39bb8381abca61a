package main

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

// startEmbedded starts the in-process JetStream server on --listen, or on a
// free port when that one is taken (another study running).
func startEmbedded(o upOptions) (srvShutdown, error) {
	host, portStr, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, usageError("--listen %q: want HOST:PORT", o.listen)
	}
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil {
		return nil, usageError("--listen %q: bad port", o.listen)
	}
	if l, err := net.Listen("tcp", net.JoinHostPort(host, portStr)); err == nil && port != 0 {
		l.Close()
	} else {
		if err == nil {
			l.Close()
		}
		port = -1 // taken, or 0: a free port (nats-server reads 0 as 4222)
	}
	srv, err := embedded.Start(embedded.Options{Host: host, Port: port, StoreDir: filepath.Join(o.dataDir, "nats"), SyncAlways: o.syncAlways})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// srvShutdown is the part of the embedded server up needs.
type srvShutdown interface {
	ClientURL() string
	Shutdown()
	WaitForShutdown()
}
