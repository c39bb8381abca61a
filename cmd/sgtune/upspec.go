package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner"
)

// loadSpec reads the spec file (or the defaults) and applies the flags' overrides.
func loadSpec(o upOptions) (study.Spec, error) {
	spec := study.Default()
	if o.specFile != "" {
		var err error
		if spec, err = study.LoadFile(o.specFile); err != nil {
			return study.Spec{}, err
		}
	}
	if o.studyName != "" {
		spec.StudyName = o.studyName
	}
	if o.nTrials != 0 {
		spec.NTrials = o.nTrials
	}
	if o.deviceNum != 0 {
		spec.DeviceNum = o.deviceNum
	}
	if o.sampler != "" {
		spec.Sampler.Algorithm = o.sampler
	}
	if o.seedSet {
		spec.Sampler.Seed = o.seed
	}
	if o.maxInFlight > 0 {
		spec.Sampler.MaxInFlight = o.maxInFlight
	}
	if o.startupTimeout < 0 || o.benchmarkTimeout < 0 {
		return study.Spec{}, fmt.Errorf("--startup-timeout and --benchmark-timeout must be positive")
	}
	if o.startupTimeout > 0 {
		spec.Model.StartupTimeout = events.Duration(o.startupTimeout)
		spec.Model.CompileStartupTimeout = events.Duration(o.startupTimeout)
	}
	if o.benchmarkTimeout > 0 {
		spec.Model.BenchmarkTimeout = events.Duration(o.benchmarkTimeout)
	}
	if err := spec.Validate(); err != nil {
		return study.Spec{}, fmt.Errorf("invalid study settings: %w", err)
	}
	// The runners of `up` are on this host: a dataset file that is missing
	// or malformed fails now, naming the file and line, not in every trial.
	if err := runner.CheckWorkload(spec.Workload); err != nil {
		return study.Spec{}, fmt.Errorf("%w: workload: %w", study.ErrInvalidSpec, err)
	}
	return spec, nil
}

// checkSGLang fails fast when the server command cannot start SGLang: the
// command is missing, or (for python3 -m sglang.launch_server) python cannot
// import sglang. Every trial would otherwise be recorded as a crash.
func checkSGLang(ctx context.Context, command []string) error {
	if len(command) == 0 {
		return fmt.Errorf("model.server_command is empty")
	}
	path, err := exec.LookPath(command[0])
	if err != nil {
		return fmt.Errorf("the server command %q is not installed (%v): install SGLang, set model.server_command, or run with --sim", command[0], err)
	}
	if len(command) >= 3 && command[1] == "-m" && strings.HasPrefix(command[2], "sglang") {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, path, "-c", "import sglang").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s cannot import sglang (%s): install SGLang (pip install sglang), or run with --sim", command[0], lastLine(string(out)))
		}
	}
	return nil
}

// lastLine is the last line of s, trimmed: what a failing command printed last.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
