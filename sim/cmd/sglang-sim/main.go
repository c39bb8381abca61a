// Command sglang-sim is the simulated SGLang server as a standalone binary:
// it takes `python -m sglang.launch_server`'s flags. See package sim.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sgtune/sgtune/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := sim.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(sim.ExitCode(err))
}
