// Package prefetch makes sure a study's model is on the runner's host before
// any trial is launched, so that no config's startup timeout is spent
// downloading weights. A local path is checked to exist. A Hugging Face hub
// id is fetched into the local cache through the server's own Python (the
// interpreter of the server command, so the same huggingface_hub, cache and
// credentials SGLang will use), once per host: a lock file in the cache
// directory serialises the runners of one host, and a model already cached
// is found without the network. The download has its own timeout and logs
// its progress.
//
// Gate tracks the models of the running studies and tells the runner whether
// it may claim trials (every model ready) or why not.
package prefetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// ErrModelMissing is wrapped when a local model path does not exist.
var ErrModelMissing = errors.New("model not on this host")

// ErrDownload is wrapped when a hub model could not be fetched.
var ErrDownload = errors.New("model download failed")

// DefaultTimeout bounds one download (a 70B model is ~140 GB).
const DefaultTimeout = 2 * time.Hour

// Model is what a study serves: --model-path, and the --revision and
// --download-dir the server will load it with (empty: SGLang's defaults).
type Model struct {
	Path        string
	Revision    string
	DownloadDir string
}

// String names the model in logs and reasons.
func (m Model) String() string {
	s := m.Path
	if m.Revision != "" {
		s += "@" + m.Revision
	}
	return s
}

// IsLocal reports whether the model is a path on this host rather than a hub
// id: absolute, relative to the working directory, or an existing path.
func (m Model) IsLocal() bool {
	p := m.Path
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "~") {
		return true
	}
	_, err := os.Stat(p)
	return err == nil
}

// ModelFromArgs reads the model of a server's launch flags.
func ModelFromArgs(args []string) Model {
	var m Model
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--model-path", "--model":
			m.Path = args[i+1]
		case "--revision":
			m.Revision = args[i+1]
		case "--download-dir":
			m.DownloadDir = args[i+1]
		}
	}
	return m
}

// Config configures a Prefetcher.
type Config struct {
	// Python is the interpreter (with any leading wrapper, e.g. ["uv", "run",
	// "python3"]) that runs the download: PythonOf(the server command).
	// Empty: hub models are not fetched (Ensure returns nil for them; the
	// server downloads on its first launch).
	Python []string
	// Env is added to the interpreter's environment (the servers' env: HF_HOME,
	// HF_TOKEN, HF_HUB_OFFLINE, ...) and decides the cache directory.
	Env []string
	// Timeout bounds one download (DefaultTimeout).
	Timeout time.Duration
	// Logger receives progress lines.
	Logger zerolog.Logger
}

// Prefetcher makes models present. It is safe for concurrent use; models
// found present are remembered.
type Prefetcher struct {
	cfg Config

	mu      sync.Mutex
	present map[Model]bool
	running map[Model]*call
}

type call struct {
	done chan struct{}
	err  error
}

// New returns a Prefetcher.
func New(cfg Config) *Prefetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Prefetcher{cfg: cfg, present: map[Model]bool{}, running: map[Model]*call{}}
}

// PythonOf picks the interpreter out of a server command: everything up to
// and including the first element named python*, e.g. ["python3", "-m",
// "sglang.launch_server"] -> ["python3"], ["uv", "run", "python", "-m", ...]
// -> ["uv", "run", "python"]. nil when the command runs no Python directly
// (a wrapper script).
func PythonOf(command []string) []string {
	for i, a := range command {
		if strings.HasPrefix(filepath.Base(a), "python") {
			return append([]string(nil), command[:i+1]...)
		}
	}
	return nil
}

// Ensure returns once m is on this host: a local path exists, or a hub
// model is in the cache (fetched if needed, one runner of the host at a
// time). Concurrent calls for one model share one attempt. Errors wrap
// ErrModelMissing or ErrDownload with the reason (the tail of the
// download's output), or are ctx's.
func (p *Prefetcher) Ensure(ctx context.Context, m Model) error {
	p.mu.Lock()
	if p.present[m] {
		p.mu.Unlock()
		return nil
	}
	if c, ok := p.running[m]; ok {
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	p.running[m] = c
	p.mu.Unlock()

	c.err = p.ensure(ctx, m)
	p.mu.Lock()
	delete(p.running, m)
	if c.err == nil {
		p.present[m] = true
	}
	p.mu.Unlock()
	close(c.done)
	return c.err
}

func (p *Prefetcher) ensure(ctx context.Context, m Model) error {
	if m.Path == "" {
		return fmt.Errorf("%w: the server args name no --model-path", ErrModelMissing)
	}
	if m.IsLocal() {
		path := m.Path
		if strings.HasPrefix(path, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(home, path[2:])
			}
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: model path %s: %v", ErrModelMissing, m.Path, err)
		}
		return nil
	}
	if len(p.cfg.Python) == 0 {
		p.cfg.Logger.Warn().Str("model", m.String()).
			Msg("the server command runs no Python directly: the model is not fetched ahead, the first launch downloads it (set SGTUNE_PREFETCH_PYTHON)")
		return nil
	}
	log := p.cfg.Logger.With().Str("model", m.String()).Logger()
	unlock, err := lockFile(ctx, lockPath(m, p.cfg.Env), func() {
		log.Info().Msg("another runner of this host is fetching the model: waiting for it")
	})
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	err = p.download(ctx, m, log)
	if err == nil {
		log.Info().Dur("took", time.Since(start).Round(time.Millisecond)).Msg("model present in the local cache")
	}
	return err
}

// script fetches argv[1] (revision argv[2], cache dir argv[3]) with
// huggingface_hub: first from the cache alone (no network), else from the
// hub, skipping weight formats SGLang will not load when safetensors exist.
const script = `import sys
repo, rev, cache = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
try:
    from huggingface_hub import snapshot_download
except Exception as e:
    print("sgtune-prefetch: huggingface_hub cannot be imported by " + sys.executable + ": " + repr(e), file=sys.stderr)
    sys.exit(3)
try:
    path = snapshot_download(repo_id=repo, revision=rev, cache_dir=cache, local_files_only=True)
    print("sgtune-prefetch: cached at " + path, flush=True)
    sys.exit(0)
except Exception:
    pass
ignore = ["original/*", "*.pth"]
try:
    from huggingface_hub import HfApi
    files = HfApi().list_repo_files(repo, revision=rev)
    if any(f.endswith(".safetensors") for f in files):
        ignore += ["*.bin", "*.pt"]
except Exception as e:
    print("sgtune-prefetch: cannot list the repository (" + repr(e) + "); fetching everything", flush=True)
print("sgtune-prefetch: downloading " + repo, flush=True)
try:
    path = snapshot_download(repo_id=repo, revision=rev, cache_dir=cache, ignore_patterns=ignore)
except Exception as e:
    print("sgtune-prefetch: " + type(e).__name__ + ": " + str(e), file=sys.stderr)
    sys.exit(1)
print("sgtune-prefetch: downloaded to " + path, flush=True)
`

// progressEvery throttles the download's progress lines in the log.
const progressEvery = 10 * time.Second

func (p *Prefetcher) download(ctx context.Context, m Model, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	argv := append(append([]string(nil), p.cfg.Python...), "-c", script, m.Path, m.Revision, m.DownloadDir)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), p.cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	log.Info().Strs("python", p.cfg.Python).Dur("timeout", p.cfg.Timeout).Msg("making sure the model is in the local cache before claiming trials")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v", ErrDownload, strings.Join(p.cfg.Python, " "), err)
	}
	tail := make(chan string, 1)
	go func() { tail <- logProgress(pr, log) }()
	err := cmd.Wait()
	pw.Close()
	last := <-tail
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %s not fetched within %s (last output: %s)", ErrDownload, m, p.cfg.Timeout, last)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %s: %v: %s", ErrDownload, m, err, last)
}

// logProgress logs the download's own lines at once and its progress bars
// (tqdm redraws a line with \r) at most every progressEvery; it returns the
// last lines, for an error's reason.
func logProgress(r io.Reader, log zerolog.Logger) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(splitLines)
	var last []string
	var lastLog time.Time
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = append(last, line)
		if len(last) > 4 {
			last = last[1:]
		}
		switch {
		case strings.HasPrefix(line, "sgtune-prefetch:"):
			log.Info().Msg(strings.TrimSpace(strings.TrimPrefix(line, "sgtune-prefetch:")))
		case time.Since(lastLog) >= progressEvery:
			log.Info().Str("progress", line).Msg("downloading the model")
			lastLog = time.Now()
		}
	}
	_, _ = io.Copy(io.Discard, r)
	return strings.Join(last, " | ")
}

// splitLines splits on \n and on \r (progress bars redraw with \r).
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
