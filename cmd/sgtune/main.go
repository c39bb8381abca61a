// Command sgtune finds the launch parameters of an SGLang server that give the
// best trade-offs between time to first token and output tokens per second.
//
// Subcommands:
//
//	up         run a whole study in one process (embedded NATS by default)
//	nats       run the embedded JetStream server alone
//	sampler    run the sampler service        (docker compose, several hosts)
//	validator  run the validator service
//	runner     run a runner service (one per GPU host)
//	reporter   run the reporter service
//	sim        run sglang-sim, the SGLang-compatible simulator server
//	validate   check one configuration against the rules
//	front      print a study's Pareto front (NATS, or a stopped store with --data-dir)
//	export     write a study as an Optuna journal, CSV or JSON
//	gpus       print this host's GPU inventory (NVML, or a simulated one)
//	bench      drive a streaming benchmark against any SGLang server (bench_serving's flags)
//	health     probe an HTTP endpoint (container health checks)
//	version    print the version (also --version)
//
// Every service reads its settings from flags and from the environment
// (SGTUNE_*, NATS_URL, NATS_USER, NATS_PASSWORD, NATS_CREDS, ...). Logs are
// JSON on stderr, or human-readable when stderr is a terminal.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code (2: bad usage, 1: failure).
type exitError struct {
	code int
	err  error
	// silent: the command already told the user (the simulator prints its own errors).
	silent bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stdout, topUsage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "sgtune: unknown command %q\n\n%s", args[0], topUsage())
		return 2
	}
	cmd := c.run
	if err := cmd(ctx, args[1:], envAliases(getenv), stdout, stderr); err != nil {
		if err == errHelp {
			return 0
		}
		var ee *exitError
		isExit := asExit(err, &ee)
		if !isExit || !ee.silent {
			fmt.Fprintf(stderr, "sgtune %s: %v\n", args[0], err)
		}
		if isExit {
			return ee.code
		}
		return 1
	}
	return 0
}

// envAliases lets either spelling of a setting configure every service:
// SGTUNE_REPLICAS and SGTUNE_NATS_REPLICAS both set the replicas of the streams
// and buckets (services provision with CreateOrUpdate, so two services
// disagreeing would flip the replica count back and forth).
func envAliases(getenv func(string) string) func(string) string {
	aliases := map[string]string{
		"SGTUNE_REPLICAS":      "SGTUNE_NATS_REPLICAS",
		"SGTUNE_NATS_REPLICAS": "SGTUNE_REPLICAS",
	}
	return func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		if alt, ok := aliases[key]; ok {
			return getenv(alt)
		}
		return ""
	}
}
