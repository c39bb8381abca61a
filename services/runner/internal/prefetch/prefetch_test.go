package prefetch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakePython stands in for the server's interpreter: called as
// `python -c SCRIPT repo revision cache_dir`, it does what the script does
// to a Hugging Face cache, without a network. FAKE_PY_MODE (read from the
// file $FAKE_PY_MODE_FILE when set, so a test can change it) is ok, fail,
// hang or noimport; every real download appends a line to $FAKE_PY_LOG.
const fakePython = `#!/bin/sh
[ "$1" = "-c" ] || { echo "fake python: want -c" >&2; exit 2; }
repo="$3"; cache="$5"
[ -n "$cache" ] || cache="$HF_HUB_CACHE"
dir="$cache/models--$(echo "$repo" | sed 's|/|--|g')/snapshots/fake"
mode="${FAKE_PY_MODE:-ok}"
[ -n "$FAKE_PY_MODE_FILE" ] && [ -f "$FAKE_PY_MODE_FILE" ] && mode=$(cat "$FAKE_PY_MODE_FILE")
case "$mode" in
noimport) echo "sgtune-prefetch: huggingface_hub cannot be imported by /fake/python: ModuleNotFoundError" >&2; exit 3;;
esac
if [ -f "$dir/config.json" ]; then echo "sgtune-prefetch: cached at $dir"; exit 0; fi
case "$mode" in
fail) echo "sgtune-prefetch: RepositoryNotFoundError: 401 Client Error for url https://huggingface.co/api/models/$repo" >&2; exit 1;;
hang) echo $$ > "$FAKE_PY_PIDFILE"; sleep 600;;
esac
echo "download $repo" >> "$FAKE_PY_LOG"
echo "sgtune-prefetch: downloading $repo"
for p in 25 50 75 100; do printf 'model.safetensors: %s%%|####      | 4.0G/16.0G\r' $p >&2; sleep ${FAKE_PY_STEP:-0.05}; done
mkdir -p "$dir" && echo '{}' > "$dir/config.json"
echo "sgtune-prefetch: downloaded to $dir"
`

type fakeHost struct {
	python, cache, log, modeFile, pidFile string
}

func newFakeHost(t *testing.T) fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := fakeHost{python: filepath.Join(dir, "python3"), cache: filepath.Join(dir, "hub"), log: filepath.Join(dir, "downloads.log"),
		modeFile: filepath.Join(dir, "mode"), pidFile: filepath.Join(dir, "pid")}
	if err := os.WriteFile(h.python, []byte(fakePython), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h fakeHost) env(mode string) []string {
	return []string{"HF_HUB_CACHE=" + h.cache, "FAKE_PY_LOG=" + h.log, "FAKE_PY_MODE=" + mode,
		"FAKE_PY_MODE_FILE=" + h.modeFile, "FAKE_PY_PIDFILE=" + h.pidFile}
}

func (h fakeHost) downloads(t *testing.T) int {
	b, err := os.ReadFile(h.log)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "download ")
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEnsure_local_paths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := New(Config{Logger: zerolog.Nop()})
	if err := p.Ensure(context.Background(), Model{Path: dir}); err != nil {
		t.Fatalf("existing local path: %v", err)
	}
	err := p.Ensure(context.Background(), Model{Path: filepath.Join(dir, "no-such-model")})
	if !errors.Is(err, ErrModelMissing) || !strings.Contains(err.Error(), "no-such-model") {
		t.Fatalf("missing local path: %v", err)
	}
}

func TestEnsure_fetches_a_hub_model_once_through_the_servers_python(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	var logs syncBuffer
	p := New(Config{Python: []string{h.python}, Env: h.env("ok"), Logger: zerolog.New(&logs)})
	m := Model{Path: "org/model-8b"}
	if err := p.Ensure(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.cache, "models--org--model-8b", "snapshots", "fake", "config.json")); err != nil {
		t.Fatalf("not in the cache: %v", err)
	}
	for _, want := range []string{"downloading org/model-8b", "model.safetensors: 25%", "downloaded to", "model present in the local cache"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if err := p.Ensure(context.Background(), m); err != nil || h.downloads(t) != 1 {
		t.Fatalf("second Ensure: %v, %d downloads", err, h.downloads(t))
	}
}

func TestEnsure_one_download_per_host(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	env := append(h.env("ok"), "FAKE_PY_STEP=0.2") // a download of about a second
	var logs syncBuffer
	// Three runners of one host: three Prefetchers (each its own lock file
	// descriptor, as separate processes), one cache.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		p := New(Config{Python: []string{h.python}, Env: env, Logger: zerolog.New(&logs)})
		wg.Go(func() { errs[i] = p.Ensure(context.Background(), Model{Path: "org/shared"}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	if n := h.downloads(t); n != 1 {
		t.Fatalf("%d downloads on one host, want 1", n)
	}
	if !strings.Contains(logs.String(), "another runner of this host is fetching the model") ||
		!strings.Contains(logs.String(), "cached at") {
		t.Fatalf("the waiting runners did not find the cache:\n%s", logs.String())
	}
}

func TestEnsure_failures_name_the_reason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenMode     string
		givenTimeout  time.Duration
		expectedWords []string
	}{
		{name: "hub refuses", givenMode: "fail", expectedWords: []string{"org/private", "401 Client Error"}},
		{name: "no huggingface_hub", givenMode: "noimport", expectedWords: []string{"huggingface_hub cannot be imported"}},
		{name: "download hangs", givenMode: "hang", givenTimeout: 500 * time.Millisecond, expectedWords: []string{"not fetched within 500ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t)
			p := New(Config{Python: []string{h.python}, Env: h.env(tt.givenMode), Timeout: tt.givenTimeout, Logger: zerolog.Nop()})
			start := time.Now()
			err := p.Ensure(context.Background(), Model{Path: "org/private"})
			if !errors.Is(err, ErrDownload) {
				t.Fatalf("err = %v, want ErrDownload", err)
			}
			for _, w := range tt.expectedWords {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if tt.givenMode == "hang" {
				// The download's process group was killed, not left behind.
				pid, _ := os.ReadFile(h.pidFile)
				if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err == nil {
					stat, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
					if !strings.Contains(string(stat), ") Z ") {
						t.Fatalf("download process %s still runs", pid)
					}
				}
			}
		})
	}
}

func TestEnsure_without_a_python_leaves_the_download_to_the_server(t *testing.T) {
	t.Parallel()
	p := New(Config{Logger: zerolog.Nop()})
	if err := p.Ensure(context.Background(), Model{Path: "org/model"}); err != nil {
		t.Fatal(err)
	}
}

func TestPythonOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given    []string
		expected []string
	}{
		{[]string{"python3", "-m", "sglang.launch_server"}, []string{"python3"}},
		{[]string{"/opt/venv/bin/python3.11", "-m", "sglang.launch_server"}, []string{"/opt/venv/bin/python3.11"}},
		{[]string{"uv", "run", "python", "-m", "sglang.launch_server"}, []string{"uv", "run", "python"}},
		{[]string{"/usr/local/bin/run-sglang.sh"}, nil},
		{[]string{"/usr/bin/sgtune", "sim"}, nil},
	}
	for _, tt := range tests {
		if got := PythonOf(tt.given); !slices.Equal(got, tt.expected) {
			t.Errorf("PythonOf(%v) = %v, want %v", tt.given, got, tt.expected)
		}
	}
}

func TestModelFromArgs(t *testing.T) {
	t.Parallel()
	got := ModelFromArgs([]string{"--model-path", "org/m", "--tp-size", "2", "--revision", "abc", "--download-dir", "/data/hf"})
	if got != (Model{Path: "org/m", Revision: "abc", DownloadDir: "/data/hf"}) {
		t.Fatalf("%+v", got)
	}
	if lockPath(got, nil) != "/data/hf/.sgtune-prefetch-models--org--m@abc.lock" {
		t.Fatalf("lock path %s", lockPath(got, nil))
	}
}
