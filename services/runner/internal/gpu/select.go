package gpu

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
)

// Restricting a runner to some of its host's GPUs: `--gpu-ids LIST` names
// them by NVML index (what `sgtune gpus` shows) or UUID; an inherited
// CUDA_VISIBLE_DEVICES names them as CUDA numbers them.

// ErrBadGPUList is wrapped by the errors of Select and VisibleDevices for a
// list that is malformed or ambiguous (an unknown id wraps ErrNoSuchGPU).
var ErrBadGPUList = errors.New("gpu: bad GPU list")

// Select returns the indices, ascending, of the GPUs of host named by list:
// comma-separated NVML indices ("0,2") or UUIDs, each in full or as a
// unique prefix ("GPU-5f2a", as CUDA accepts). Errors wrap ErrNoSuchGPU and
// name every id the host does not have, with the GPUs it has; a duplicate,
// an empty list or an ambiguous prefix wraps ErrBadGPUList.
func Select(host []events.GPU, list string) ([]int, error) {
	ids := splitList(list)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no GPU named in %q", ErrBadGPUList, list)
	}
	var out []int
	var missing []string
	for _, id := range ids {
		idx, err := lookupID(host, id)
		switch {
		case errors.Is(err, ErrNoSuchGPU):
			missing = append(missing, id)
			continue
		case err != nil:
			return nil, err
		}
		if slices.Contains(out, idx) {
			return nil, fmt.Errorf("%w: GPU %s is named twice in %q", ErrBadGPUList, id, list)
		}
		out = append(out, idx)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: this host has no GPU %s (it has %s)", ErrNoSuchGPU, strings.Join(missing, ", "), describeHost(host))
	}
	slices.Sort(out)
	return out, nil
}

// VisibleDevices returns the indices, ascending, of the GPUs of host an
// inherited CUDA_VISIBLE_DEVICES value names. UUIDs (or unique prefixes)
// are exact. Integers are CUDA ordinals: in PCI bus order (NVML's) with
// CUDA_DEVICE_ORDER=PCI_BUS_ID, else fastest first, which is the same order
// on a host of identical GPUs; on a host of mixed GPUs without PCI_BUS_ID
// they are refused as ambiguous. MIG instances are refused. Errors as Select.
func VisibleDevices(host []events.GPU, cudaVisible, cudaOrder string) ([]int, error) {
	ids := splitList(cudaVisible)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: CUDA_VISIBLE_DEVICES=%q makes no GPU visible", ErrBadGPUList, cudaVisible)
	}
	pciOrder := pciOrdered(host)
	mixed := slices.ContainsFunc(host, func(g events.GPU) bool { return g.Name != host[0].Name })
	var out []int
	var missing []string
	for _, id := range ids {
		if strings.HasPrefix(id, "MIG-") {
			return nil, fmt.Errorf("%w: CUDA_VISIBLE_DEVICES names MIG instance %s: sgtune schedules whole GPUs only", ErrBadGPUList, id)
		}
		var idx int
		if n, err := strconv.Atoi(id); err == nil {
			if mixed && cudaOrder != "PCI_BUS_ID" {
				return nil, fmt.Errorf("%w: CUDA_VISIBLE_DEVICES=%s is ambiguous on this host of mixed GPUs (CUDA numbers them fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID): set CUDA_DEVICE_ORDER=PCI_BUS_ID or name the GPUs by UUID", ErrBadGPUList, cudaVisible)
			}
			if n < 0 || n >= len(pciOrder) {
				missing = append(missing, id)
				continue
			}
			idx = pciOrder[n].Index
		} else {
			i, err := lookupID(host, id)
			if errors.Is(err, ErrNoSuchGPU) {
				missing = append(missing, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			idx = i
		}
		if slices.Contains(out, idx) {
			return nil, fmt.Errorf("%w: CUDA_VISIBLE_DEVICES=%s names GPU %s twice", ErrBadGPUList, cudaVisible, id)
		}
		out = append(out, idx)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: CUDA_VISIBLE_DEVICES=%s: this host has no GPU %s (it has %s)", ErrNoSuchGPU, cudaVisible, strings.Join(missing, ", "), describeHost(host))
	}
	slices.Sort(out)
	return out, nil
}

// pciOrdered returns the GPUs in PCI bus order (their index order when a
// bus id is missing): CUDA's order under CUDA_DEVICE_ORDER=PCI_BUS_ID.
func pciOrdered(host []events.GPU) []events.GPU {
	out := slices.Clone(host)
	slices.SortStableFunc(out, func(a, b events.GPU) int {
		if a.PCIBusID != "" && b.PCIBusID != "" {
			if c := cmp.Compare(strings.ToLower(a.PCIBusID), strings.ToLower(b.PCIBusID)); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Index, b.Index)
	})
	return out
}

// lookupID finds one index or UUID (prefix) among host's GPUs.
func lookupID(host []events.GPU, id string) (int, error) {
	if n, err := strconv.Atoi(id); err == nil {
		for _, g := range host {
			if g.Index == n {
				return n, nil
			}
		}
		return 0, ErrNoSuchGPU
	}
	found := -1
	for _, g := range host {
		if g.UUID == id {
			return g.Index, nil
		}
		if strings.HasPrefix(g.UUID, id) {
			if found >= 0 {
				return 0, fmt.Errorf("%w: %s is the prefix of more than one GPU's UUID", ErrBadGPUList, id)
			}
			found = g.Index
		}
	}
	if found < 0 {
		return 0, ErrNoSuchGPU
	}
	return found, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// describeHost lists a host's GPUs briefly: "4 GPUs: 0 GPU-aa..., 1 GPU-bb...".
func describeHost(host []events.GPU) string {
	if len(host) == 0 {
		return "no GPUs"
	}
	parts := make([]string, len(host))
	for i, g := range host {
		parts[i] = fmt.Sprintf("%d %s", g.Index, g.UUID)
	}
	return fmt.Sprintf("%d GPUs: %s", len(host), strings.Join(parts, ", "))
}

// Split divides GPU indices into n disjoint sets of consecutive GPUs, as
// even as possible (the first sets get one more when they do not divide),
// so that several runners on one host never share a GPU. Errors: more sets
// than GPUs (ErrBadGPUList).
func Split(indices []int, n int) ([][]int, error) {
	if n < 1 || n > len(indices) {
		return nil, fmt.Errorf("%w: cannot split %d GPUs between %d runners", ErrBadGPUList, len(indices), n)
	}
	idx := slices.Clone(indices)
	slices.Sort(idx)
	out := make([][]int, n)
	size, extra := len(idx)/n, len(idx)%n
	at := 0
	for i := range n {
		k := size
		if i < extra {
			k++
		}
		out[i] = idx[at : at+k : at+k]
		at += k
	}
	return out, nil
}
