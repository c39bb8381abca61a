package sglang

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LaunchSpec says how to start one server.
type LaunchSpec struct {
	// Command is the program and its leading arguments, e.g.
	// ["python3", "-m", "sglang.launch_server"] or [os.Executable(), "sim"].
	Command []string
	// Args follow Command: model path, static and trial flags (TrialQueued.ServerArgs).
	Args []string
	// Host and Port are appended as --host and --port; Host defaults to 127.0.0.1.
	Host string
	Port int
	// GPUs become CUDA_VISIBLE_DEVICES (comma-separated indices) when not empty.
	GPUs []int
	// Env holds extra "KEY=value" entries added to the runner's environment.
	Env []string
	// LogPath is the file that receives the server's stdout and stderr; it is
	// created (with its directory) and kept after the server stops.
	LogPath string
	// RingBytes is how much of the log's end is kept in memory (default 64 KiB).
	RingBytes int
}

// Server is one running server process group. Its methods are safe for
// concurrent use; Stop must always be called, even after the process exited,
// to clean up the rest of its group and close the log.
type Server struct {
	argv    []string
	baseURL string
	port    int
	pgid    int
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	ring    *Ring
	oom     *oomWatcher
	started time.Time

	exited   chan struct{} // closed once the leader process has been reaped
	copyDone chan struct{} // closed once the log copier reached EOF
	state    *os.ProcessState
	pipeR    *os.File

	stopOnce sync.Once
	stopErr  error

	// plainHealth is set once the server answered 404 to HealthPath: it is
	// asked HealthPathPlain from then on.
	plainHealth atomic.Bool
}

// Launch starts the server directly from its argv (never through a shell) in
// a new process group, with --host and --port appended and its output going
// to the log file and an in-memory ring. It returns once the process has
// started; use WaitHealthy to wait for readiness. ctx bounds only the start.
func Launch(ctx context.Context, spec LaunchSpec) (*Server, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, ErrNoCommand
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	host := spec.Host
	if host == "" {
		host = "127.0.0.1"
	}
	argv := make([]string, 0, len(spec.Command)+len(spec.Args)+4)
	argv = append(argv, spec.Command...)
	argv = append(argv, spec.Args...)
	argv = append(argv, "--host", host, "--port", strconv.Itoa(spec.Port))

	if spec.LogPath == "" {
		return nil, fmt.Errorf("sglang: launch: no log path")
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("sglang: create log directory: %w", err)
	}
	logFile, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sglang: open log: %w", err)
	}
	fmt.Fprintf(logFile, "# sgtune: %s\n", strings.Join(argv, " "))
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("sglang: create log pipe: %w", err)
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	if len(spec.GPUs) > 0 {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+JoinInts(spec.GPUs))
	}
	// A *os.File is handed to the child as is: no copying goroutine inside
	// exec, so Wait does not hang on grandchildren holding the pipe open.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("sglang: start %s: %w", argv[0], err)
	}
	pw.Close()

	ringBytes := spec.RingBytes
	if ringBytes <= 0 {
		ringBytes = 64 << 10
	}
	s := &Server{
		argv:     argv,
		baseURL:  "http://" + hostPort(host, spec.Port),
		port:     spec.Port,
		pgid:     cmd.Process.Pid, // Setpgid with Pgid 0: the group id is the leader's pid
		cmd:      cmd,
		logPath:  spec.LogPath,
		logFile:  logFile,
		ring:     NewRing(ringBytes),
		oom:      &oomWatcher{},
		started:  time.Now(),
		exited:   make(chan struct{}),
		copyDone: make(chan struct{}),
		pipeR:    pr,
	}
	go func() {
		defer close(s.copyDone)
		_, _ = io.Copy(io.MultiWriter(logFile, s.ring, s.oom), pr)
	}()
	go func() {
		_ = cmd.Wait()
		s.state = cmd.ProcessState
		close(s.exited)
	}()
	return s, nil
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// JoinInts formats GPU indices for CUDA_VISIBLE_DEVICES: "0,1,3".
func JoinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

// Argv is the full command line the server was started with.
func (s *Server) Argv() []string { return append([]string(nil), s.argv...) }

// URL is the server's base URL, e.g. "http://127.0.0.1:30000".
func (s *Server) URL() string { return s.baseURL }

// Port is the port the server was told to listen on.
func (s *Server) Port() int { return s.port }

// PGID is the server's process group id.
func (s *Server) PGID() int { return s.pgid }

// LogPath is the file holding the server's whole output.
func (s *Server) LogPath() string { return s.logPath }

// Tail returns about the last n bytes of the server's output.
func (s *Server) Tail(n int) string { return s.ring.Tail(n) }

// Exited is closed once the server's main process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// ExitFailure returns the classified failure of a server whose main process
// exited (nil while it runs). It waits briefly for the log to be flushed so
// an OOM message printed just before exiting is seen.
func (s *Server) ExitFailure() *Failure {
	select {
	case <-s.exited:
	default:
		return nil
	}
	select {
	case <-s.copyDone:
	case <-time.After(500 * time.Millisecond):
	}
	f := ClassifyExit(s.state, s.oom.Seen())
	if line := LastException(s.ring.Tail(16 << 10)); line != "" {
		f.Reason += ": " + line
	}
	return f
}

// OOMSeen reports whether the server's log has shown an out-of-memory error so far.
func (s *Server) OOMSeen() bool { return s.oom.Seen() }

// groupSignal sends sig to every process of the server's group.
func (s *Server) groupSignal(sig syscall.Signal) error {
	err := syscall.Kill(-s.pgid, sig)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}
