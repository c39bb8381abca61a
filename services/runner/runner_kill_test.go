package runner

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// runnerProcess is `sgtune runner` running as a child OS process.
type runnerProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's error, valid after done
	log  string
}

func startRunnerProcess(t *testing.T, bin, natsURL, id string, ackWait time.Duration) *runnerProcess {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "runner", "--nats-url", natsURL, "--id", id, "--sim", "--gpus", "1",
		"--log-dir", filepath.Join(dir, "trials"), "--sim-time-scale", "0.001", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "SGTUNE_ACK_WAIT="+ackWait.String(), "SGTUNE_MAX_DELIVER=5",
		"SGTUNE_HEARTBEAT_EVERY=500ms", "SGTUNE_SIM_SEED=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runnerProcess{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL) // no-op once it exited
		<-p.done
	})
	return p
}

func (p *runnerProcess) dumpLog(t *testing.T) {
	b, _ := os.ReadFile(p.log)
	t.Logf("runner %s log:\n%s", filepath.Base(p.log), b)
}

// TestRunnerProcess_SIGKILL_mid_trial_another_runner_completes_it_once runs
// `sgtune runner` as a real OS process, SIGKILLs it while it benchmarks a
// trial on `sgtune sim`, and checks that a second runner process completes
// the trial after the ack wait, that exactly one result is recorded, and
// that no runner or simulator process is left.
func TestRunnerProcess_SIGKILL_mid_trial_another_runner_completes_it_once(t *testing.T) {
	if testing.Short() {
		t.Skip("runs runner and simulator processes")
	}
	bin := sgtuneBinary(t)
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	const ackWait = 3 * time.Second

	a := startRunnerProcess(t, bin, srv.ClientURL(), "runner-a", ackWait)
	// A benchmark long enough to be killed in the middle of: a few seconds of
	// simulated decoding, far inside the 2-minute timeout.
	q := simTrial(7, time.Minute, 2*time.Minute, 5*time.Second)
	q.Study = "killed"
	q.Envelope = events.NewEnvelope(events.TypeTrialQueued, "killed", 7, time.Now())
	q.Workload.NumPrompts, q.Workload.RandomOutputLen, q.Workload.MaxConcurrency = 8, 256, 4
	waitUntil(t, 30*time.Second, "trials stream provisioned by runner a", func() bool {
		_, err := js.Stream(ctx, events.StreamTrials)
		return err == nil
	})
	if _, err := natsx.Publish(ctx, js, events.TrialSubject("killed", 1, 7), q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			a.dumpLog(t)
		}
	})
	waitUntil(t, 30*time.Second, "runner a benchmarking the trial", func() bool {
		p, ok := lastProgress(t, js, "killed", 7)
		if data, ok, _ := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("killed", 7)); ok {
			t.Fatalf("the trial ended before the kill: %s", data)
		}
		return ok && p.Runner == "runner-a" && (p.Phase == events.PhaseBenchmarking || p.Phase == events.PhaseHeartbeat)
	})
	time.Sleep(500 * time.Millisecond) // well inside the benchmark
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	killedAt := time.Now()
	// The kernel kills the simulator with the runner (Pdeathsig).
	waitUntil(t, 10*time.Second, "runner a's simulator gone", func() bool { return len(processesOf(bin)) == 0 })

	b := startRunnerProcess(t, bin, srv.ClientURL(), "runner-b", ackWait)
	var res events.TrialResult
	waitUntil(t, 90*time.Second, "a result for the trial", func() bool {
		data, ok, err := natsx.LastOnSubject(ctx, js, events.StreamOutcomes, events.OutcomeSubject("killed", 7))
		if err != nil || !ok {
			return false
		}
		return json.Unmarshal(data, &res) == nil
	})
	t.Logf("result after %v: %s by %s (%v requests)", time.Since(killedAt).Round(time.Millisecond), res.State, res.Runner, res.Metrics["completed"])
	if res.State != events.StateComplete || res.Runner != "runner-b" || res.Metrics["completed"] != 8 {
		b.dumpLog(t)
		t.Fatalf("result %+v", res)
	}
	// Exactly one result, and the trial left the work queue (acked).
	waitUntil(t, 10*time.Second, "the trial acked", func() bool {
		s, err := js.Stream(ctx, events.StreamTrials)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	s, err := js.Stream(ctx, events.StreamOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.OutcomeSubject("killed", 7)))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[events.OutcomeSubject("killed", 7)]; n != 1 {
		t.Fatalf("%d results recorded, want exactly 1", n)
	}

	// A graceful stop of runner b leaves nothing behind either.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
		if b.err != nil {
			b.dumpLog(t)
			t.Fatalf("runner b exited with %v after SIGTERM", b.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runner b did not stop within 20 s of SIGTERM")
	}
	if left := processesOf(bin); len(left) > 0 {
		t.Fatalf("processes left behind: %v", left)
	}
}

func lastProgress(t *testing.T, js jetstream.JetStream, study string, trial int) (events.TrialProgress, bool) {
	t.Helper()
	data, ok, err := natsx.LastOnSubject(context.Background(), js, events.StreamProgress, events.ProgressSubject(study, trial))
	if err != nil || !ok {
		return events.TrialProgress{}, false
	}
	var p events.TrialProgress
	if json.Unmarshal(data, &p) != nil {
		return events.TrialProgress{}, false
	}
	return p, true
}

// waitUntil polls cond every 50 ms until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
