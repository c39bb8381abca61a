package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// evalMain is the exec backend's benchmark command of the services
// harness (`samplerbench eval`): it reads the trial ({"study", "trial",
// "params", "gpus"}) from stdin, measures the configuration on the surface
// the study name says, sleeps the trial's simulated duration times
// -time-scale (not for sequential studies, where timing changes nothing),
// and prints {"ttft", "tps", ...}; a failed launch prints the surface's
// error line on stderr and exits 1, as a failing server would.
func evalMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("samplerbench eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scale := fs.Float64("time-scale", 0, "real seconds per simulated second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var in struct {
		Study  string        `json:"study"`
		Trial  int           `json:"trial"`
		Params events.Params `json:"params"`
		GPUs   []int         `json:"gpus"`
	}
	if err := json.NewDecoder(stdin).Decode(&in); err != nil {
		return fmt.Errorf("eval: read the trial: %w", err)
	}
	name, setting, ok := parseStudyName(in.Study)
	if !ok {
		return fmt.Errorf("eval: study %q is not a benchmark study (sb_<surface>_<setting>_<seed>)", in.Study)
	}
	surf, ok := surfaceByName(name)
	if !ok {
		return fmt.Errorf("eval: unknown surface %q", name)
	}
	m := trim(surf.Measure(in.Params, len(in.GPUs)))
	if *scale > 0 && !strings.HasSuffix(setting, "-seq") {
		time.Sleep(time.Duration(defaultDuration(in.Params, len(in.GPUs), m.Failed) * *scale * float64(time.Second)))
	}
	if m.Failed {
		fmt.Fprintln(stderr, m.Stderr)
		return exitCode(1)
	}
	m = surf.Noisy(m, trialRNG(in.Study, in.Trial))
	return json.NewEncoder(stdout).Encode(m.Metrics)
}
