package sglang

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
)

var ports Ports

func launchFake(t *testing.T, mode string, extra map[string]string) *Server {
	t.Helper()
	port, err := ports.Pick()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ports.Release(port) })
	s, err := Launch(context.Background(), LaunchSpec{
		Command: fakeserver.Command(),
		Args:    []string{"--model-path", "fake/model", "--tp-size", "2"},
		Port:    port,
		GPUs:    []int{2, 3},
		Env:     fakeserver.Env(mode, extra),
		LogPath: filepath.Join(t.TempDir(), "trial.log"),
	})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Stop(time.Second)
		assertGroupGone(t, s.PGID())
	})
	return s
}

func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if err := syscall.Kill(-pgid, 0); err != syscall.ESRCH && GroupAlive(pgid) {
		t.Fatalf("process group %d still has live processes (kill: %v)", pgid, err)
	}
}

func TestLaunch_healthy_then_stop_leaves_no_process(t *testing.T) {
	t.Parallel()
	s := launchFake(t, "healthy", map[string]string{"SGTUNE_FAKE_STARTUP": "300ms"})
	startup, err := s.WaitHealthy(context.Background(), 10*time.Second)
	if err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if startup < 300*time.Millisecond || startup > 5*time.Second {
		t.Fatalf("startup = %v, want about 300ms", startup)
	}
	argv := s.Argv()
	if got := strings.Join(argv[len(argv)-4:], " "); got != "--host 127.0.0.1 --port "+strconv.Itoa(s.Port()) {
		t.Fatalf("argv ends with %q", got)
	}
	if err := s.Stop(2 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertGroupGone(t, s.PGID())
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`gpus="2,3"`, "--tp-size", "SIGTERM"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if !strings.Contains(s.Tail(4096), "--model-path") {
		t.Errorf("tail lacks the args: %q", s.Tail(4096))
	}
}

func TestWaitHealthy_failure_classes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		givenMode     string
		givenExtra    map[string]string
		givenTimeout  time.Duration
		expectedClass string
		expectedMax   time.Duration // how long WaitHealthy may take
	}{
		{name: "crash fails fast", givenMode: "crash", givenTimeout: 30 * time.Second, expectedClass: events.FailCrash, expectedMax: 5 * time.Second},
		{name: "oom fails fast", givenMode: "oom", givenExtra: map[string]string{"SGTUNE_FAKE_STARTUP": "100ms"}, givenTimeout: 30 * time.Second, expectedClass: events.FailOOM, expectedMax: 5 * time.Second},
		{name: "never listens", givenMode: "hang", givenTimeout: 700 * time.Millisecond, expectedClass: events.FailTimeout, expectedMax: 3 * time.Second},
		{name: "stuck starting", givenMode: "starting", givenTimeout: 700 * time.Millisecond, expectedClass: events.FailTimeout, expectedMax: 3 * time.Second},
		{name: "answers 500", givenMode: "unhealthy", givenTimeout: 700 * time.Millisecond, expectedClass: events.FailUnhealthy, expectedMax: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := launchFake(t, tt.givenMode, tt.givenExtra)
			start := time.Now()
			_, err := s.WaitHealthy(context.Background(), tt.givenTimeout)
			took := time.Since(start)
			f, ok := AsFailure(err)
			if !ok {
				t.Fatalf("WaitHealthy error = %v, want a *Failure", err)
			}
			if f.Class != tt.expectedClass {
				t.Fatalf("class = %q (%s), want %q", f.Class, f.Reason, tt.expectedClass)
			}
			if took > tt.expectedMax {
				t.Fatalf("WaitHealthy took %v, want <= %v", took, tt.expectedMax)
			}
		})
	}
}

func TestWaitHealthy_cancelled_ctx_is_not_a_failure(t *testing.T) {
	t.Parallel()
	s := launchFake(t, "starting", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.WaitHealthy(ctx, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if _, ok := AsFailure(err); ok {
		t.Fatal("a cancelled wait must not be a Failure")
	}
}

func TestStop_kills_group_that_ignores_sigterm(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"ignore-term", "fork"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := launchFake(t, mode, nil)
			if _, err := s.WaitHealthy(context.Background(), 10*time.Second); err != nil {
				t.Fatalf("WaitHealthy: %v", err)
			}
			start := time.Now()
			if err := s.Stop(300 * time.Millisecond); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if took := time.Since(start); took > 4*time.Second {
				t.Fatalf("Stop took %v", took)
			}
			assertGroupGone(t, s.PGID())
		})
	}
}

func TestExitFailure_after_healthy_reports_oom(t *testing.T) {
	t.Parallel()
	s := launchFake(t, "die-after-healthy", nil)
	if _, err := s.WaitHealthy(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	select {
	case <-s.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not exit")
	}
	f := s.ExitFailure()
	if f == nil || f.Class != events.FailOOM || !strings.Contains(f.Reason, "status 3") {
		t.Fatalf("ExitFailure = %+v, want oom with status 3", f)
	}
	if err := s.Stop(time.Second); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
}

func TestLaunch_bad_command(t *testing.T) {
	t.Parallel()
	_, err := Launch(context.Background(), LaunchSpec{LogPath: filepath.Join(t.TempDir(), "l")})
	if !errors.Is(err, ErrNoCommand) {
		t.Fatalf("err = %v, want ErrNoCommand", err)
	}
	_, err = Launch(context.Background(), LaunchSpec{Command: []string{"/nonexistent/sglang"}, LogPath: filepath.Join(t.TempDir(), "l")})
	if err == nil {
		t.Fatal("want an error for a missing program")
	}
}
