package prefetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockPoll is how often a runner waiting for another one's download retries
// the lock (flock cannot wait on a context).
const lockPoll = 500 * time.Millisecond

// cacheDir is the Hugging Face hub cache the server will read: the model's
// --download-dir, else HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub
// or ~/.cache/huggingface/hub, with env (the servers' environment) taking
// precedence over the runner's own.
func cacheDir(m Model, env []string) string {
	if m.DownloadDir != "" {
		return m.DownloadDir
	}
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return os.Getenv(k)
	}
	if v := get("HF_HUB_CACHE"); v != "" {
		return v
	}
	if v := get("HF_HOME"); v != "" {
		return filepath.Join(v, "hub")
	}
	if v := get("XDG_CACHE_HOME"); v != "" {
		return filepath.Join(v, "huggingface", "hub")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "huggingface", "hub")
	}
	return filepath.Join(os.TempDir(), "huggingface", "hub")
}

// lockPath is the lock file of one model's download, in the cache it goes
// to: every runner of the host (every process) that fetches the same model
// into the same cache takes the same lock.
func lockPath(m Model, env []string) string {
	name := ".sgtune-prefetch-models--" + strings.ReplaceAll(m.Path, "/", "--")
	if m.Revision != "" {
		name += "@" + strings.ReplaceAll(m.Revision, "/", "--")
	}
	return filepath.Join(cacheDir(m, env), name+".lock")
}

// lockFile takes an exclusive flock on path (created with its directory),
// polling until ctx is done; onWait is called once when another process
// holds it. The returned function releases it. The lock dies with the
// process, so a runner killed mid-download never blocks the host.
func lockFile(ctx context.Context, path string, onWait func()) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%w: create the cache directory for the download lock: %v", ErrDownload, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: open the download lock: %v", ErrDownload, err)
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("%w: lock %s: %v", ErrDownload, path, err)
		}
		if !waited && onWait != nil {
			onWait()
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
