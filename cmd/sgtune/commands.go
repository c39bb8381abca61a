package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// command is one subcommand: what it does in one line, its arguments, and the
// function that runs it. `sgtune -h` lists them; `sgtune NAME -h` starts with
// the summary and the synopsis, then the flags.
type command struct {
	name     string
	summary  string
	synopsis string
	// details, when set, follows the synopsis in -h (examples, exit codes).
	details string
	run     func(context.Context, []string, func(string) string, io.Writer, io.Writer) error
}

// commands lists every subcommand in the order `sgtune -h` shows them.
func commands() []command {
	return []command{
		{name: "up", summary: "run a whole study in one process (embedded NATS unless --nats-url)",
			synopsis: "[--spec FILE] [--n-trials N] [--study-name NAME] [--sim] [--http ADDR] [--data-dir DIR | --nats-url URL] [flags]",
			details:  upDetails, run: cmdUp},
		{name: "nats", summary: "run the embedded JetStream server alone, for services in other processes or hosts",
			synopsis: "[--listen HOST:PORT] [--data-dir DIR] [--http-port N]", run: cmdNATS},
		{name: "sampler", summary: "run the sampler service: owns one study, proposes its trials, exits when it is complete",
			synopsis: "[--nats-url URL] [--spec FILE] [--n-trials N] [flags]", run: cmdSampler},
		{name: "validator", summary: "run the validator service: checks every candidate against the rules, queues or rejects it",
			synopsis: "[--nats-url URL] [flags]", run: cmdValidator},
		{name: "runner", summary: "run a runner service (one per GPU host): launches and benchmarks the trials that fit its GPUs",
			synopsis: "[--nats-url URL] [--sim] [--gpus N --gpu-model MODEL] [flags]", details: gpuFlagsDetails, run: cmdRunner},
		{name: "reporter", summary: "run the reporter service: folds every outcome into the Pareto front (KV pareto/front)",
			synopsis: "[--nats-url URL] [--output FILE] [flags]", run: cmdReporter},
		{name: "sim", summary: "run sglang-sim, the SGLang-compatible simulated server (takes sglang.launch_server's flags)",
			synopsis: "--model-path PATH [launch_server flags]", run: cmdSim},
		{name: "validate", summary: "check one configuration against the study's rules (VALID or INVALID with the reasons)",
			synopsis: "[--spec FILE] [--device-num N] [--gpu-model MODEL] [--json] '{\"tp_size\": 2, ...}'",
			details:  validateDetails, run: cmdValidate},
		{name: "front", summary: "print a study's Pareto front, from a NATS server or from a stopped `sgtune up` store",
			synopsis: "[--study NAME] [--nats-url URL | --data-dir DIR] [--json] [--output FILE] [--serve ADDR]", run: cmdFront},
		{name: "export", summary: "write a study as an Optuna journal (optuna, optuna-dashboard), CSV (pandas) or JSON",
			synopsis: "--format optuna-journal|csv|json [--study NAME] (--nats-url URL | --data-dir DIR) [--output FILE]",
			details:  exportDetails, run: cmdExport},
		{name: "gpus", summary: "list this host's GPUs as the runner sees them (NVML, or a simulated inventory)",
			synopsis: "[--json] [--gpus N --gpu-model MODEL] [--watch DURATION]", details: gpuFlagsDetails, run: cmdGPUs},
		{name: "bench", summary: "benchmark a running SGLang server like sglang.bench_serving (streaming load, same metrics)",
			synopsis: "--url URL [--num-prompts N] [--max-concurrency C | --request-rate R] [--json] [flags]", run: cmdBench},
		{name: "health", summary: "probe an HTTP URL and exit 0 on 200 (container health checks)",
			synopsis: "[--timeout 3s] URL", run: cmdHealth},
		{name: "version", summary: "print sgtune's version (also: sgtune --version)", run: cmdVersion},
	}
}

// lookupCommand finds a subcommand by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

const gpuFlagsDetails = `GPU counts: --device-num is the seed's rule, the most GPUs ONE TRIAL may use
(tp_size x pp_size x dp_size <= N); --gpus N asks for a simulated HOST of N
GPUs instead of NVML's. On a GPU host NVML gives the inventory (a binary from
make build); without NVML, real servers are refused rather than given invented
GPUs (--sim alone simulates). --gpu-ids LIST (NVML indices or UUIDs) or an
inherited CUDA_VISIBLE_DEVICES restricts the GPUs; sgtune up --runners N splits
them; GPUs another live runner holds are refused (exit 2).`

const upDetails = `Runs the sampler, validator, reporter and --runners runners against an
embedded NATS server whose store is --data-dir (or against --nats-url), shows
progress, prints the front and writes the results file. The same command again
resumes the study; after it exits, read it with
  sgtune front --data-dir DIR --study NAME
  sgtune export --format optuna-journal --data-dir DIR --study NAME --output study.journal

` + gpuFlagsDetails

const validateDetails = `Checks one configuration against the study's rules exactly as the validator
service does (without dedup, which needs a study's history): the safety rules
always and the spec's rule sets (rules.sets; default: seed, sglang and
hardware). The hardware rules need a fleet: with --gpu-model they are checked
against one simulated host of that GPU model (and turned on if the spec's
sets lack them); without it they are skipped, with a note.

Prints VALID with the canonical config (what SGLang would really run) and the
launch flags, or INVALID with every failing rule and its reason.
Exit status: 0 valid, 1 invalid, 2 bad input (malformed JSON, unknown
parameter or value, bad spec or flag).

Example:
  sgtune validate --gpu-model A100-40G '{"tp_size": 2, "attention_backend": "fa3"}'`

const exportDetails = `Formats:
  optuna-journal  an Optuna JournalStorage file: optuna.load_study(study_name=NAME,
                  storage=JournalStorage(JournalFileStorage(FILE))) (Optuna 3.1+;
                  JournalFileBackend in 4.x), or optuna-dashboard FILE.
                  study.best_trials is sgtune's Pareto front.
  csv             one row per trial: number, state, objectives, every parameter,
                  headline metrics, reason (pandas.read_csv opens it)
  json            the results document (the front plus every trial)
--data-dir reads a stopped 'sgtune up' store (a copy of it: nothing in DIR changes).`

// newFlagSet builds a command's flag set whose errors are usage errors and
// whose -h starts with the command's one-line summary and its synopsis.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sgtune "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printCommandHelp(stderr, name, fs) }
	return fs
}

// aliasPrefix starts the usage of a flag kept only as an older spelling of
// another: it works but -h does not list it (one name per idea).
const aliasPrefix = "alias of "

// printCommandHelp writes a command's -h: summary, synopsis, details, flags.
func printCommandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c, _ := lookupCommand(name)
	fmt.Fprintf(w, "sgtune %s: %s\n\nusage: sgtune %s %s\n", name, c.summary, name, c.synopsis)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", c.details)
	}
	if fs == nil {
		return
	}
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, aliasPrefix) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(&b, " %s", arg)
		}
		fmt.Fprintf(&b, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", b.String())
	}
}

// topUsage is `sgtune -h`: every command with its summary.
func topUsage() string {
	var b strings.Builder
	b.WriteString("sgtune: tune SGLang launch parameters for time to first token and tokens per second\n\n")
	b.WriteString("usage: sgtune <command> [flags]\n       sgtune --version\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'sgtune <command> -h' for a command's arguments and flags.\n")
	return b.String()
}

// cmdVersion prints the version: the module version when built from a
// release, else "devel", with the commit and Go version the binary records.
func cmdVersion(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// version is set at build time (make build: -X main.version=$(git describe));
// empty means the module's version, or "devel".
var version string

func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "sgtune " + firstNonEmptyStr(version, "devel") + " (no build information)"
	}
	v := version
	if v == "" {
		v = info.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, when string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	out := "sgtune " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		out += " (commit " + rev
		if when != "" {
			out += ", " + when
		}
		out += ")"
	}
	return out + " " + info.GoVersion
}
