package sglang

import (
	"fmt"
	"syscall"
	"time"
)

// stopPoll is how often Stop checks whether the group is gone.
const stopPoll = 20 * time.Millisecond

// killGrace bounds the wait for the group to vanish after SIGKILL.
const killGrace = 5 * time.Second

// Stop ends the server: SIGTERM to its whole process group, up to timeout for
// the group to exit, then SIGKILL to the group. It returns once no process of
// the group is left (ErrGroupSurvived otherwise) and the log is closed.
// Calling it again returns the first call's result.
func (s *Server) Stop(timeout time.Duration) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(timeout) })
	return s.stopErr
}

func (s *Server) stop(timeout time.Duration) error {
	defer s.closeLog()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if err := s.groupSignal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sglang: SIGTERM group %d: %w", s.pgid, err)
	}
	if s.waitGroupGone(timeout) {
		return nil
	}
	if err := s.groupSignal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("sglang: SIGKILL group %d: %w", s.pgid, err)
	}
	if s.waitGroupGone(killGrace) {
		return nil
	}
	return fmt.Errorf("%w: pgid %d", ErrGroupSurvived, s.pgid)
}

// waitGroupGone polls until the leader is reaped and no process of the group
// is alive, or d passes.
func (s *Server) waitGroupGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(stopPoll)
	defer t.Stop()
	for {
		select {
		case <-s.exited:
			if !GroupAlive(s.pgid) {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
}

// closeLog waits for the log copier (all writers gone) for a moment, then
// closes the pipe and the log file.
func (s *Server) closeLog() {
	select {
	case <-s.copyDone:
	case <-time.After(time.Second):
		// A process escaped the group (setsid) and still holds the pipe.
		s.pipeR.Close()
		<-s.copyDone
	}
	s.pipeR.Close()
	s.logFile.Close()
}
