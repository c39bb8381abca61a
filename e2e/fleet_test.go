package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// fakeTrialArg makes the test binary an exec-backend benchmark command
// (see TestMain): it reads the trial from stdin, takes FAKE_TRIAL_SECONDS
// (±20 %, by trial), and prints a TTFT and a throughput that depend on the
// parameters.
const fakeTrialArg = "fake-trial"

func fakeTrial(stdin io.Reader, stdout io.Writer) error {
	var in struct {
		Trial  int            `json:"trial"`
		Params map[string]any `json:"params"`
	}
	if err := json.NewDecoder(stdin).Decode(&in); err != nil {
		return err
	}
	h := fnv.New64a()
	fmt.Fprint(h, in.Trial)
	for _, k := range []string{"schedule_policy", "page_size", "cuda_graph_max_bs", "chunked_prefill_size", "num_continuous_decode_steps"} {
		fmt.Fprint(h, k, in.Params[k])
	}
	u := float64(h.Sum64()%1000) / 1000
	var secs float64
	fmt.Sscan(os.Getenv("FAKE_TRIAL_SECONDS"), &secs)
	time.Sleep(time.Duration(secs * (0.8 + 0.4*u) * float64(time.Second)))
	return json.NewEncoder(stdout).Encode(map[string]float64{"ttft": 0.1 + 0.2*u, "tps": 1000 + 3000*(1-u)})
}

// TestFleetOf32RunnersNeverWaitsForProposals runs one study on 32 runner
// processes (`sgtune runner`, exec backend, 8 simulated GPUs each: 256 GPUs,
// as many slots) around the default sampler (gp-ehvi) and the validator on
// an embedded NATS server, for two and a half waves of one-GPU trials, and
// checks from the record that no GPU waited for a proposal: every trial
// that took over a GPU from a finished one had been proposed before that
// one finished (the sampler keeps a sixteenth more than the fleet's slots
// in flight, so a freed GPU finds a trial queued).
func TestFleetOf32RunnersNeverWaitsForProposals(t *testing.T) {
	if testing.Short() {
		t.Skip("a 32-process fleet for about a minute")
	}
	const (
		runners    = 32
		gpusEach   = 8
		trialSecs  = 15.0
		waves      = 2.5
		trialCount = int(waves * runners * gpusEach)
	)
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	conn := natsx.ConnConfig{URL: srv.ClientURL()}
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	svcCtx, stop := context.WithCancel(ctx)
	defer stop()
	vdone := make(chan error, 1)
	go func() { vdone <- validator.Run(svcCtx, validator.Config{NATS: conn}.Defaults(), logger) }()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var procs []*exec.Cmd
	for i := range runners {
		cmd := exec.Command(sgtuneBin, "runner", "--nats-url", srv.ClientURL(), "--id", fmt.Sprintf("fleet-%02d", i),
			"--backend", "exec", "--benchmark-cmd", self+" "+fakeTrialArg, "--gpus", fmt.Sprint(gpusEach),
			"--log-dir", filepath.Join(dir, "logs"), "--log-level", "warn")
		// The trial consumer's MaxAckPending caps the trials of one GPU class
		// claimed at once across the fleet (default 64): raise it to the fleet.
		cmd.Env = append(os.Environ(), fmt.Sprintf("FAKE_TRIAL_SECONDS=%g", trialSecs), fmt.Sprintf("SGTUNE_MAX_ACK_PENDING=%d", 2*runners*gpusEach))
		log, err := os.Create(filepath.Join(dir, fmt.Sprintf("runner-%02d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	})
	eventually(t, time.Minute, "32 live runners", func() bool {
		rs, err := natsx.LiveRunners(ctx, js)
		return err == nil && len(rs) == runners
	})

	spec := study.Default()
	spec.StudyName = "fleet"
	spec.NTrials = trialCount
	spec.Rules.Sets = []string{"seed"}
	spec.Space = study.Space{
		{Name: "schedule_policy", Values: []any{"fcfs", "lpm", "random", "dfs-weight", "lof"}},
		{Name: "page_size", Values: []any{nil, 16, 32, 64, 128, 256}},
		{Name: "cuda_graph_max_bs", Values: []any{nil, 8, 16, 24, 32, 48, 64, 80, 96}},
		{Name: "chunked_prefill_size", Values: []any{nil, 4096, 8192, 16384}},
		{Name: "num_continuous_decode_steps", Values: []any{1, 2, 4, 8, 16}},
	}
	if err := sampler.Run(ctx, sampler.Config{NATS: conn, Spec: spec, FleetPoll: 500 * time.Millisecond}, logger); err != nil {
		t.Fatalf("sampler: %v", err)
	}

	proposedAt := map[int]time.Time{}
	if err := natsx.Replay(ctx, js, events.StreamCandidates, events.CandidatesOfStudy("fleet"), func(data []byte, _ natsx.Meta) error {
		ev, err := events.Decode[events.CandidateProposed](data, events.TypeCandidateProposed)
		if err == nil {
			proposedAt[ev.Trial] = ev.OccurredAt
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	type run struct {
		trial         int
		start, finish time.Time
	}
	byGPU := map[string][]run{}
	results := 0
	if err := natsx.Replay(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy("fleet"), func(data []byte, _ natsx.Meta) error {
		ev, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
		if err != nil {
			return nil // a rejection
		}
		results++
		if ev.State != events.StateComplete || len(ev.GPUs) != 1 {
			return fmt.Errorf("trial %d: %s on GPUs %v (%s)", ev.Trial, ev.State, ev.GPUs, ev.Reason)
		}
		key := fmt.Sprintf("%s/%d", ev.Runner, ev.GPUs[0])
		byGPU[key] = append(byGPU[key], run{ev.Trial, ev.StartedAt, ev.FinishedAt})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if results != trialCount {
		t.Fatalf("%d results, want %d", results, trialCount)
	}
	if len(byGPU) != runners*gpusEach {
		t.Fatalf("trials ran on %d GPUs, the fleet has %d", len(byGPU), runners*gpusEach)
	}
	handovers, waited := 0, []string{}
	var gaps []time.Duration
	for gpu, rs := range byGPU {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
		for i := 1; i < len(rs); i++ {
			prev, next := rs[i-1], rs[i]
			handovers++
			gaps = append(gaps, next.start.Sub(prev.finish))
			if proposedAt[next.trial].After(prev.finish) {
				waited = append(waited, fmt.Sprintf("%s: trial %d proposed %s after trial %d freed the GPU",
					gpu, next.trial, proposedAt[next.trial].Sub(prev.finish).Round(time.Millisecond), prev.trial))
			}
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	t.Logf("%d trials, %d GPU handovers; gap from a trial's end to the next start on its GPU: median %s, max %s",
		results, handovers, gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	if handovers < trialCount-runners*gpusEach {
		t.Fatalf("%d handovers, want %d", handovers, trialCount-runners*gpusEach)
	}
	if len(waited) > 0 {
		t.Fatalf("%d of %d handovers waited for a proposal:\n%s", len(waited), handovers, strings.Join(waited[:min(len(waited), 10)], "\n"))
	}
	stop()
	if err := <-vdone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
