package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sgtune/sgtune/services/runner"
)

// cmdGPUs prints the host's GPU inventory as the runner sees it (NVML with
// the nvml build tag, else a simulated inventory with --gpus), as a table or
// JSON; --watch samples power, utilisation, memory and energy for a while.
func cmdGPUs(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gpus", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	n := fs.Int("gpus", 0, "without NVML: show a simulated inventory of N GPUs")
	model := fs.String("gpu-model", envOr(getenv, "SGTUNE_GPU_MODEL", "H100"), "simulated inventory: GPU model")
	watch := fs.Duration("watch", 0, "with NVML: sample usage for this long (e.g. 10s) and report it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep, err := runner.InspectGPUs(*n, *model, *watch)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	if rep.Note != "" {
		fmt.Fprintln(stderr, "note:", rep.Note)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tNAME\tUUID\tCC\tMEMORY USED\tMEMORY TOTAL")
	for _, g := range rep.GPUs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.Index, g.Name, g.UUID, g.ComputeCapability,
			gib(g.MemoryUsedBytes), gib(g.MemoryTotalBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "source: %s", rep.Source)
	if rep.DriverVersion != "" {
		fmt.Fprintf(stdout, ", driver %s", rep.DriverVersion)
	}
	fmt.Fprintln(stdout)
	if u := rep.Usage; u != nil {
		fmt.Fprintf(stdout, "over %s (%d samples): peak memory %s on one GPU, %s in all", time.Duration(u.Seconds*float64(time.Second)).Round(time.Millisecond),
			u.Samples, gib(u.PeakMemoryBytes), gib(u.PeakMemoryTotalBytes))
		if u.MeanUtilizationPct != nil {
			fmt.Fprintf(stdout, ", utilisation mean %.0f%% max %.0f%%", *u.MeanUtilizationPct, *u.MaxUtilizationPct)
		}
		if u.MeanPowerWatts != nil {
			fmt.Fprintf(stdout, ", power mean %.0f W max %.0f W", *u.MeanPowerWatts, *u.MaxPowerWatts)
		}
		if u.EnergyJoules != nil {
			fmt.Fprintf(stdout, ", energy %.1f J", *u.EnergyJoules)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
