package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

// storeFlags are how a client command finds a study: a NATS server
// (--nats-url and the NATS_* environment) or a stopped store (--data-dir).
type storeFlags struct {
	conn    natsx.ConnConfig
	dataDir string
	urlSet  bool
}

func addStoreFlags(fs *flag.FlagSet, getenv func(string) string) *storeFlags {
	sf := &storeFlags{conn: natsx.ConnConfigFromEnv(getenv)}
	fs.Func("nats-url", "read from the NATS server at `URL` (default $NATS_URL or "+natsx.DefaultURL+")", func(s string) error {
		sf.conn.URL, sf.urlSet = s, true
		return nil
	})
	fs.StringVar(&sf.dataDir, "data-dir", "", "read the store a stopped 'sgtune up --data-dir DIR' left in `DIR`, instead of a server; nothing in DIR changes")
	return sf
}

// open connects to the server, or serves a copy of the stopped store on a
// private embedded server, and returns a JetStream context and a function
// that releases everything.
func (sf *storeFlags) open(ctx context.Context, name string) (jetstream.JetStream, func(), error) {
	if sf.dataDir != "" {
		if sf.urlSet {
			return nil, nil, usageError("--nats-url and --data-dir exclude each other: read a running server or a stopped store")
		}
		return openStoppedStore(ctx, sf.dataDir, name)
	}
	conn := sf.conn
	conn.Name = name
	nc, js, err := natsx.ConnectClient(ctx, conn, 0)
	if errors.Is(err, natsx.ErrUnreachable) {
		return nil, nil, fmt.Errorf("%w\n(start the server, or point --nats-url at it; to read what a stopped `sgtune up` left, use --data-dir DIR)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// openStoppedStore copies the JetStream store under dir (`sgtune up
// --data-dir` keeps it in dir/nats, `sgtune nats --data-dir` in dir) to a
// temporary directory and serves the copy on an embedded server that listens
// on loopback only: the original is only read, so a store that `sgtune up`
// may resume later is never changed (JetStream rewrites index files on start).
func openStoppedStore(ctx context.Context, dir, name string) (jetstream.JetStream, func(), error) {
	var src string
	for _, cand := range []string{filepath.Join(dir, "nats"), dir} {
		if st, err := os.Stat(filepath.Join(cand, "jetstream")); err == nil && st.IsDir() {
			src = cand
			break
		}
	}
	if src == "" {
		return nil, nil, fmt.Errorf("no JetStream store in %s (want %s, as `sgtune up --data-dir %s` leaves it, or %s from `sgtune nats`)",
			dir, filepath.Join(dir, "nats", "jetstream"), dir, filepath.Join(dir, "jetstream"))
	}
	tmp, err := os.MkdirTemp("", "sgtune-store-*")
	if err != nil {
		return nil, nil, fmt.Errorf("copy the store: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	if err := copyTree(filepath.Join(src, "jetstream"), filepath.Join(tmp, "jetstream")); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("copy the store %s: %w", src, err)
	}
	srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: tmp})
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("open the store %s: %w", src, err)
	}
	stop := func() { srv.Shutdown(); srv.WaitForShutdown(); cleanup() }
	nc, js, err := natsx.ConnectClient(ctx, natsx.ConnConfig{URL: srv.ClientURL(), Name: name}, 0)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return js, func() { nc.Close(); stop() }, nil
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
