package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter"
	"github.com/sgtune/sgtune/services/runner"
	"github.com/sgtune/sgtune/services/sampler"
	"github.com/sgtune/sgtune/services/validator"
)

// TestStudyThroughAllFourServices runs a 12-trial study through the sampler,
// the validator, two runners launching sglang-sim as real child processes, and
// the reporter, all on one embedded JetStream server; then reads the front
// back from KV with a plain NATS client.
func TestStudyThroughAllFourServices(t *testing.T) {
	const trials = 12
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	spec, err := study.LoadFile(writeFile(t, dir, "study.yaml", quickSpec("e2e", trials)))
	if err != nil {
		t.Fatal(err)
	}
	conn := natsx.ConnConfig{URL: srv.ClientURL()}
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	svcCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, 8)
	start := func(name string, run func() error) {
		go func() {
			if err := run(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			errs <- nil
		}()
	}
	vcfg := validator.Config{NATS: conn}.Defaults()
	start("validator", func() error { return validator.Run(svcCtx, vcfg, logger) })
	output := filepath.Join(dir, "results.json")
	start("reporter", func() error {
		return reporter.Run(svcCtx, reporter.Config{NATS: conn, Output: output, Quiet: true}, logger)
	})
	for i := range 2 {
		cfg := runner.Config{
			NATS: conn, RunnerID: fmt.Sprintf("e2e-runner-%d", i), Backend: runner.BackendSGLang, Sim: true,
			ServerCommand: []string{sgtuneBin, "sim"}, GPUs: 4, GPUModel: "H100", SimTimeScale: 0.01,
			LogDir: filepath.Join(dir, "logs"),
		}
		cfg.SetDefaults()
		start(cfg.RunnerID, func() error { return runner.Run(svcCtx, cfg, logger) })
	}

	// The sampler returns when the study is complete.
	if err := sampler.Run(ctx, sampler.Config{NATS: conn, Spec: spec}, logger); err != nil {
		t.Fatalf("sampler: %v", err)
	}

	// Every trial number has exactly one outcome, and the budget was spent on
	// benchmarked trials only.
	outs := outcomes(t, ctx, js, "e2e")
	benchmarked := 0
	for _, env := range outs {
		if env.Type == events.TypeTrialResult {
			benchmarked++
		}
	}
	if benchmarked != trials {
		t.Fatalf("%d benchmarked outcomes, want %d", benchmarked, trials)
	}
	// The study runs the default rule sets (seed, sglang, hardware): no trial
	// was launched only for the server to refuse its flags at start.
	err = natsx.Replay(ctx, js, events.StreamOutcomes, events.OutcomesOfStudy("e2e"), func(data []byte, _ natsx.Meta) error {
		res, err := events.Decode[events.TrialResult](data, events.TypeTrialResult)
		if err == nil && res.State == events.StateFailed && res.FailureClass == events.FailCrash {
			t.Errorf("trial %d was launched and refused by the server: %s\n%s", res.Trial, res.Reason, res.LogTail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The reporter folds the last outcomes shortly after; read the front as a user would.
	var doc struct {
		StudyName   string `json:"study_name"`
		NTrials     int    `json:"n_trials"`
		ParetoFront []struct {
			TrialNumber   int            `json:"trial_number"`
			TTFT          float64        `json:"ttft"`
			TPS           float64        `json:"tps"`
			Parameters    map[string]any `json:"parameters"`
			State         string         `json:"state"`
			LaunchCommand []string       `json:"launch_command"`
		} `json:"pareto_front"`
		Counts struct {
			Outcomes int `json:"outcomes"`
		} `json:"counts"`
	}
	eventually(t, 30*time.Second, "the front to count every outcome", func() bool {
		v := readFront(t, ctx, js, events.KeyFront)
		return json.Unmarshal(v, &doc) == nil && doc.Counts.Outcomes == len(outs)
	})
	v := readFront(t, ctx, js, events.KeyFront)
	checkFrontLine(t, v)
	if doc.StudyName != "e2e" || doc.NTrials != trials || len(doc.ParetoFront) == 0 {
		t.Fatalf("front = %s", v)
	}
	for _, m := range doc.ParetoFront {
		if m.State != events.StateComplete || m.TTFT <= 0 || m.TPS <= 0 || len(m.LaunchCommand) < 3 || m.LaunchCommand[0] != sgtuneBin {
			t.Fatalf("front member %+v", m)
		}
	}

	stop()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "no simulator process left", func() bool { return len(simProcesses()) == 0 })
}
