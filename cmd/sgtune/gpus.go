package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/runner"
)

// gpusReport is `sgtune gpus --json`: the inventory plus, with --nats-url,
// which live runner holds each GPU and the quarantined ones.
type gpusReport struct {
	runner.GPUReport
	// Fleet is set with --nats-url: per GPU index, who holds it and its state.
	Fleet map[int]gpuHolder `json:"fleet,omitempty"`
}

// gpuHolder is a GPU as the fleet registry shows it.
type gpuHolder struct {
	Runner string `json:"runner"`
	// State is "free", "busy", "quarantined" or "paused".
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// cmdGPUs prints the host's GPU inventory as a runner with the same flags
// sees it (NVML, restricted by --gpu-ids and CUDA_VISIBLE_DEVICES; or a
// simulated inventory with --gpus), as a table or JSON; --nats-url adds
// which runner holds each GPU and which are quarantined and why; --watch
// samples power, utilisation, memory and energy for a while.
func cmdGPUs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gpus", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	n := fs.Int("gpus", 0, "show a simulated inventory of N GPUs instead of reading NVML")
	model := fs.String("gpu-model", envOr(getenv, "SGTUNE_GPU_MODEL", "H100"), "simulated inventory: GPU model")
	ids := fs.String("gpu-ids", getenv("SGTUNE_GPU_IDS"), "only these GPUs (NVML indices or UUIDs, comma-separated), as `sgtune runner --gpu-ids`")
	watch := fs.Duration("watch", 0, "with NVML: sample usage for this long (e.g. 10s) and report it")
	natsURL := fs.String("nats-url", "", "also show which runner holds each GPU and the quarantined ones, from the fleet registry at `URL`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep, err := runner.InspectGPUs(runner.GPUQuery{Simulated: *n, Model: *model, GPUIDs: *ids,
		CUDAVisibleDevices: getenv("CUDA_VISIBLE_DEVICES"), CUDADeviceOrder: getenv("CUDA_DEVICE_ORDER"), Watch: *watch})
	if errors.Is(err, runner.ErrInvalidConfig) {
		return &exitError{code: 2, err: err}
	}
	if err != nil {
		return err
	}
	out := gpusReport{GPUReport: rep}
	if *natsURL != "" {
		conn := natsx.ConnConfigFromEnv(getenv)
		conn.URL, conn.Name = *natsURL, "sgtune-gpus"
		nc, js, err := natsx.ConnectClient(ctx, conn, 0)
		if err != nil {
			return err
		}
		defer nc.Close()
		if out.Fleet, err = fleetHolders(ctx, js, rep.GPUs); err != nil {
			return err
		}
	}
	if *asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	if rep.Note != "" {
		fmt.Fprintln(stderr, "note:", rep.Note)
	}
	printGPUs(stdout, out)
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

func printGPUs(w io.Writer, out gpusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "INDEX\tNAME\tUUID\tCC\tMEMORY USED\tMEMORY TOTAL"
	if out.Fleet != nil {
		head += "\tRUNNER\tSTATE"
	}
	fmt.Fprintln(tw, head)
	for _, g := range out.GPUs {
		line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", g.Index, g.Name, g.UUID, g.ComputeCapability,
			gib(g.MemoryUsedBytes), gib(g.MemoryTotalBytes))
		if out.Fleet != nil {
			h, ok := out.Fleet[g.Index]
			switch {
			case !ok:
				line += "\t-\tno runner"
			case h.Reason != "":
				line += "\t" + h.Runner + "\t" + h.State + ": " + h.Reason
			default:
				line += "\t" + h.Runner + "\t" + h.State
			}
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "source: %s", out.Source)
	if out.DriverVersion != "" {
		fmt.Fprintf(w, ", driver %s", out.DriverVersion)
	}
	if out.CUDAVersion != "" {
		fmt.Fprintf(w, ", CUDA %s", out.CUDAVersion)
	}
	fmt.Fprintln(w)
}

// fleetHolders maps each of gpus to the live runner that holds it (by UUID;
// a simulated GPU only to a runner of this host) and its state there.
func fleetHolders(ctx context.Context, js jetstream.JetStream, gpus []events.GPU) (map[int]gpuHolder, error) {
	runners, err := natsx.LiveRunners(ctx, js)
	if err != nil {
		return nil, err
	}
	out := map[int]gpuHolder{}
	host, _ := os.Hostname()
	for _, st := range runners {
		for _, g := range gpus {
			i := slices.IndexFunc(st.GPUs, func(o events.GPU) bool { return o.UUID == g.UUID })
			if i < 0 || (g.Simulated && st.Host != host) {
				continue
			}
			out[g.Index] = holderState(st, st.GPUs[i].Index)
		}
	}
	return out, nil
}

func holderState(st events.RunnerStatus, index int) gpuHolder {
	h := gpuHolder{Runner: st.Runner, State: "busy"}
	if slices.Contains(st.FreeGPUs, index) {
		h.State = "free"
	}
	for _, q := range st.Quarantined {
		if q.Index == index {
			h.State, h.Reason = "quarantined", q.Reason
		}
	}
	if st.Paused != "" && h.State == "free" {
		h.State, h.Reason = "paused", strings.TrimSpace(st.Paused)
	}
	return h
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
