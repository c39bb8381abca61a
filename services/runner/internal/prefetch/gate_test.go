package prefetch

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// waitFor polls cond (the gate fetches in the background).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGate_not_ready_until_every_running_studys_model_is_present(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	p := New(Config{Python: []string{h.python}, Env: append(h.env("ok"), "FAKE_PY_STEP=0.3"), Logger: zerolog.Nop()})
	g := NewGate(p, GateConfig{Logger: zerolog.Nop()})
	if ok, why := g.Ready(); ok || !strings.Contains(why, "reading the running studies") {
		t.Fatalf("before the studies were read: %v %q", ok, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)

	g.Want([]Model{{Path: "org/a"}})
	if ok, why := g.Ready(); ok || !strings.Contains(why, "fetching model org/a") {
		t.Fatalf("while fetching: %v %q", ok, why)
	}
	waitFor(t, "org/a present", func() bool { ok, _ := g.Ready(); return ok })

	// A second study starts with another model: not ready again until it is here.
	g.Want([]Model{{Path: "org/a"}, {Path: "org/b"}})
	if ok, why := g.Ready(); ok || !strings.Contains(why, "org/b") {
		t.Fatalf("with a new model: %v %q", ok, why)
	}
	waitFor(t, "org/b present", func() bool { ok, _ := g.Ready(); return ok })
	if h.downloads(t) != 2 {
		t.Fatalf("%d downloads, want 2", h.downloads(t))
	}
	// No running study: nothing to wait for.
	g.Want(nil)
	if ok, _ := g.Ready(); !ok {
		t.Fatal("not ready without studies")
	}
}

func TestGate_a_model_that_cannot_be_had_keeps_the_runner_not_ready_and_is_retried(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t)
	if err := os.WriteFile(h.modeFile, []byte("fail"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(Config{Python: []string{h.python}, Env: h.env("ok"), Logger: zerolog.Nop()})
	g := NewGate(p, GateConfig{RetryMin: 200 * time.Millisecond, RetryMax: 400 * time.Millisecond, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)
	g.Want([]Model{{Path: "org/private"}})
	var why string
	waitFor(t, "the failure in the reason", func() bool {
		_, why = g.Ready()
		return strings.Contains(why, "401 Client Error")
	})
	if !strings.Contains(why, "org/private is not on this host") || !strings.Contains(why, "retrying") {
		t.Fatalf("reason %q", why)
	}
	// The token is fixed: the next retry gets it.
	if err := os.WriteFile(h.modeFile, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready after a retry", func() bool { ok, _ := g.Ready(); return ok })
}

func TestGate_Ensure_for_a_trial_joins_the_gate(t *testing.T) {
	t.Parallel()
	missing := t.TempDir() + "/gone"
	g := NewGate(New(Config{Logger: zerolog.Nop()}), GateConfig{Logger: zerolog.Nop()})
	g.Want(nil)
	if err := g.Ensure(context.Background(), Model{Path: missing}); err == nil {
		t.Fatal("a missing local model was accepted")
	}
	if ok, why := g.Ready(); ok || !strings.Contains(why, "gone") {
		t.Fatalf("after a trial's model was missing: %v %q", ok, why)
	}
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := g.Ensure(context.Background(), Model{Path: missing}); err != nil {
		t.Fatal(err)
	}
	if ok, why := g.Ready(); !ok {
		t.Fatalf("not ready once the model is there: %q", why)
	}
}
