package runner

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
	"github.com/sgtune/sgtune/services/runner/internal/fakeserver"
	"github.com/sgtune/sgtune/services/runner/internal/gpu"
)

func TestMain(m *testing.M) {
	if fakeserver.Enabled() {
		os.Exit(fakeserver.Main())
	}
	code := m.Run()
	removeSGTuneBinary()
	os.Exit(code)
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"NATS_URL": "nats://n:4222", "SGTUNE_BACKEND": "sglang", "SGTUNE_SIM": "true", "SGTUNE_GPUS": "8",
		"SGTUNE_GPU_MODEL": "a100-40g", "SGTUNE_SIM_TIME_SCALE": "0.01", "SGTUNE_ACK_WAIT": "45s",
		"SGTUNE_RUNNER_ID": "gpu-host-1", "SGTUNE_MAX_CONCURRENT_TRIALS": "3",
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://n:4222" || !cfg.Sim || cfg.GPUs != 8 || cfg.SimTimeScale != 0.01 || cfg.AckWait != 45*time.Second ||
		cfg.RunnerID != "gpu-host-1" || cfg.MaxConcurrentTrials != 3 || cfg.MaxDeliver != DefaultMaxDeliver || len(cfg.ServerCommand) != 0 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	sim8, _ := gpu.NewSimulated(8, cfg.GPUModel)
	_, command, simEnv, _ := backendSetup(cfg, sim8, zerolog.Nop())
	if command[len(command)-1] != "sim" || !slices.Contains(simEnv, "SGTUNE_SIM_TIME_SCALE=0.01") || !slices.Contains(simEnv, "SGTUNE_SIM_GPU=A100-40G") ||
		!slices.Contains(simEnv, "CUDA_DEVICE_ORDER=PCI_BUS_ID") {
		t.Fatalf("sim command %v env %v", command, simEnv)
	}

	def, err := LoadConfig(func(string) string { return "" })
	if err != nil || def.Backend != BackendSGLang || len(def.ServerCommand) != 0 || def.RunnerID == "" || def.GPUModel != "H100" {
		t.Fatalf("defaults %+v (%v)", def, err)
	}
	if _, command, _, _ := backendSetup(def, sim8, zerolog.Nop()); !slices.Equal(command, DefaultServerCommand) {
		t.Fatalf("default server command %v", command)
	}
	// --sim given as a flag after LoadConfig still launches the simulator.
	def.Sim = true
	if _, command, _, _ := backendSetup(def, sim8, zerolog.Nop()); command[len(command)-1] != "sim" {
		t.Fatalf("sim server command %v", command)
	}
}

func TestValidate_reports_every_problem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		given  func(*Config)
		wantOK bool
	}{
		{name: "defaults", given: func(*Config) {}, wantOK: true},
		{name: "unknown backend", given: func(c *Config) { c.Backend = "vllm" }},
		{name: "exec without command", given: func(c *Config) { c.Backend = BackendExec }},
		{name: "exec with command", given: func(c *Config) { c.Backend = BackendExec; c.BenchmarkCmd = []string{"./bench"} }, wantOK: true},
		{name: "unknown GPU model", given: func(c *Config) { c.GPUModel = "V100" }},
		{name: "bad runner id", given: func(c *Config) { c.RunnerID = "a b" }},
		{name: "short ack wait", given: func(c *Config) { c.AckWait = time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.given(&c)
			err := c.Validate()
			if tt.wantOK != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.wantOK)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
	if _, err := LoadConfig(func(k string) string {
		return map[string]string{"SGTUNE_GPUS": "many", "SGTUNE_ACK_WAIT": "soon"}[k]
	}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("LoadConfig with bad numbers: %v", err)
	}
}

// TestRun_end_to_end runs the whole service against an embedded JetStream
// server, with this test binary as the SGLang server.
func TestRun_end_to_end(t *testing.T) {
	if testing.Short() {
		t.Skip("launches server processes")
	}
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	t.Setenv(fakeserver.EnvSwitch, "1") // inherited by the launched servers
	t.Setenv("SGTUNE_FAKE_MODE", "healthy")
	cfg := Config{
		NATS: natsx.ConnConfig{URL: srv.ClientURL()}, RunnerID: "e2e", Sim: true,
		ServerCommand: fakeserver.Command(), GPUs: 2, LogDir: t.TempDir(), AckWait: 5 * time.Second,
		HeartbeatEvery: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})

	for i, tc := range []struct {
		mode string
		gpus int
	}{{"healthy", 1}, {"oom", 2}} {
		q := events.TrialQueued{
			Envelope: events.NewEnvelope(events.TypeTrialQueued, "e2e", i, time.Now()), GPUs: tc.gpus,
			Params:     events.Params{"tp_size": float64(tc.gpus)},
			ServerArgs: []string{"--model-path", "fake/model"},
			Workload: events.Workload{Backend: "sglang", Dataset: "random-ids", NumPrompts: 4, RandomInputLen: 8,
				RandomOutputLen: 4, RandomRangeRatio: 1, MaxConcurrency: 2, Seed: 1, IgnoreEOS: true},
			Timeouts: events.Timeouts{Startup: events.Duration(10 * time.Second), Benchmark: events.Duration(10 * time.Second),
				Shutdown: events.Duration(time.Second)},
		}
		q.ServerArgs = append(q.ServerArgs, "--fake-mode", tc.mode)
		if _, err := natsx.Publish(context.Background(), js, events.TrialSubject("e2e", tc.gpus, i), q); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	results := map[int]events.TrialResult{}
	for len(results) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d results", len(results))
		}
		for trial := range 2 {
			data, ok, err := natsx.LastOnSubject(context.Background(), js, events.StreamOutcomes, events.OutcomeSubject("e2e", trial))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				var r events.TrialResult
				if err := json.Unmarshal(data, &r); err != nil {
					t.Fatal(err)
				}
				results[trial] = r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok := results[0]
	if ok.State != events.StateComplete || ok.Backend != "sim" || ok.Metrics["completed"] != 4 || ok.Runner != "e2e" || len(ok.GPUs) != 1 {
		t.Fatalf("trial 0: %+v", ok)
	}
	bad := results[1]
	if bad.State != events.StateFailed || bad.FailureClass != events.FailOOM || bad.LogTail == "" {
		t.Fatalf("trial 1: %+v", bad)
	}
	waitTrialsAcked(t, js)
}

func waitTrialsAcked(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(context.Background(), events.StreamTrials)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d trials still queued (not acked)", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
