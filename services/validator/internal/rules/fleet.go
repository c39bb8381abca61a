package rules

import (
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
)

// HostsOf maps the runners' heartbeats (KV sgtune_fleet) to the hosts the
// hardware rules consider, one per runner, named "runner@host".
func HostsOf(runners []events.RunnerStatus) []Host {
	out := make([]Host, 0, len(runners))
	for _, r := range runners {
		h := Host{Name: r.Runner}
		if r.Host != "" && r.Host != r.Runner {
			h.Name = r.Runner + "@" + r.Host
		}
		if h.Name == "" {
			h.Name = "unnamed runner"
		}
		for _, g := range r.GPUs {
			major, minor := parseCC(g.ComputeCapability)
			h.GPUs = append(h.GPUs, GPU{Name: g.Name, MemoryBytes: g.MemoryTotalBytes, CCMajor: major, CCMinor: minor})
		}
		out = append(out, h)
	}
	return out
}

// parseCC reads "9.0" as 9, 0; anything else as unknown (0, 0).
func parseCC(s string) (int, int) {
	maj, minor, _ := strings.Cut(strings.TrimSpace(s), ".")
	a, err := strconv.Atoi(maj)
	if err != nil || a < 0 || a > 99 {
		return 0, 0
	}
	b, err := strconv.Atoi(minor)
	if err != nil || b < 0 || b > 9 {
		b = 0
	}
	return a, b
}

// DescribeHosts renders each host as "name: 8 × NVIDIA H100 80GB HBM3 (sm90, 80 GiB)".
func DescribeHosts(fleet []Host) []string {
	out := make([]string, 0, len(fleet))
	for _, h := range fleet {
		out = append(out, describeHost(h))
	}
	return out
}

// describeFleet joins DescribeHosts with "; ".
func describeFleet(fleet []Host) string { return strings.Join(DescribeHosts(fleet), "; ") }

func describeHost(h Host) string {
	type key struct {
		name, cc string
		gb       uint64
	}
	counts := map[key]int{}
	var order []key
	for _, g := range h.GPUs {
		k := key{g.Name, g.CC(), (g.MemoryBytes + 1<<29) >> 30} // GiB, rounded
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, itoa(counts[k])+" × "+k.name+" ("+k.cc+", "+strconv.FormatUint(k.gb, 10)+" GiB)")
	}
	if len(parts) == 0 {
		parts = []string{"no GPUs"}
	}
	return h.Name + ": " + strings.Join(parts, ", ")
}
