package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sgtune/sgtune/sim"
)

// cmdSim runs sglang-sim: it takes sglang.launch_server's flags and serves
// SGLang's HTTP API with timing from a performance model.
func cmdSim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			// The simulator prints launch_server's argparse help (on stdout, as
			// argparse does); say first what the command is.
			c, _ := lookupCommand("sim")
			fmt.Fprintf(stdout, "sgtune sim: %s\n\n", c.summary)
			break
		}
	}
	if err := sim.Run(ctx, args, getenv, stdout, stderr); err != nil {
		if code := sim.ExitCode(err); code != 0 {
			return &exitError{code: code, err: err, silent: true}
		}
	}
	return nil
}
