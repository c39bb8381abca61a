package gpu

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
)

func host(names ...string) []events.GPU {
	out := make([]events.GPU, len(names))
	for i, n := range names {
		out[i] = events.GPU{Index: i, Name: n, UUID: fmt.Sprintf("GPU-%d%d%d-aaaa", i, i, i), PCIBusID: fmt.Sprintf("00000000:%02X:00.0", 0x18+i*0x10)}
	}
	return out
}

func TestSelect(t *testing.T) {
	t.Parallel()
	h := host("H100", "H100", "H100", "H100")
	tests := []struct {
		name      string
		givenList string
		expected  []int
		withError error
		errSays   string
	}{
		{"indices", "2,0", []int{0, 2}, nil, ""},
		{"uuids and prefixes", "GPU-333-aaaa, GPU-1", []int{1, 3}, nil, ""},
		{"missing ids are all named", "1,7,GPU-9", nil, ErrNoSuchGPU, "no GPU 7, GPU-9 (it has 4 GPUs: 0 GPU-000-aaaa"},
		{"duplicate", "1,GPU-111", nil, ErrBadGPUList, "named twice"},
		{"ambiguous prefix", "GPU-", nil, ErrBadGPUList, "more than one"},
		{"empty", " , ", nil, ErrBadGPUList, "no GPU named"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Select(h, tt.givenList)
			if tt.withError != nil {
				if !errors.Is(err, tt.withError) || !strings.Contains(err.Error(), tt.errSays) {
					t.Fatalf("err = %v, want %v saying %q", err, tt.withError, tt.errSays)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.expected) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.expected)
			}
		})
	}
}

func TestVisibleDevices(t *testing.T) {
	t.Parallel()
	same := host("H100", "H100", "H100", "H100")
	mixed := host("NVIDIA A10", "NVIDIA H100", "NVIDIA A10", "NVIDIA H100")
	// NVML index order differs from PCI order here: CUDA_DEVICE_ORDER=PCI_BUS_ID follows the bus.
	shuffled := host("H100", "H100", "H100")
	shuffled[0].PCIBusID, shuffled[2].PCIBusID = shuffled[2].PCIBusID, shuffled[0].PCIBusID
	tests := []struct {
		name      string
		givenHost []events.GPU
		visible   string
		order     string
		expected  []int
		withError error
	}{
		{"identical GPUs: any order", same, "3,1", "", []int{1, 3}, nil},
		{"mixed GPUs with PCI_BUS_ID", mixed, "0,1", "PCI_BUS_ID", []int{0, 1}, nil},
		{"mixed GPUs in the default order are ambiguous", mixed, "0", "", nil, ErrBadGPUList},
		{"mixed GPUs by UUID", mixed, "GPU-222", "", []int{2}, nil},
		{"PCI order, not NVML index", shuffled, "0", "PCI_BUS_ID", []int{2}, nil},
		{"ordinal out of range", same, "4", "PCI_BUS_ID", nil, ErrNoSuchGPU},
		{"MIG refused", same, "MIG-abcd", "", nil, ErrBadGPUList},
		{"set but empty", same, "", "", nil, ErrBadGPUList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := VisibleDevices(tt.givenHost, tt.visible, tt.order)
			if tt.withError != nil {
				if !errors.Is(err, tt.withError) {
					t.Fatalf("err = %v, want %v", err, tt.withError)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.expected) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.expected)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		given    []int
		n        int
		expected [][]int
	}{
		{[]int{0, 1, 2, 3}, 2, [][]int{{0, 1}, {2, 3}}},
		{[]int{3, 1, 2, 0, 4}, 2, [][]int{{0, 1, 2}, {3, 4}}},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 1, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{[]int{4, 5, 6}, 3, [][]int{{4}, {5}, {6}}},
	}
	for _, tt := range tests {
		got, err := Split(tt.given, tt.n)
		if err != nil || !slices.EqualFunc(got, tt.expected, slices.Equal) {
			t.Errorf("Split(%v, %d) = %v, %v; want %v", tt.given, tt.n, got, err, tt.expected)
		}
	}
	if _, err := Split([]int{0, 1}, 3); !errors.Is(err, ErrBadGPUList) {
		t.Fatalf("err = %v, want ErrBadGPUList", err)
	}
}

func TestRestrict_simulated(t *testing.T) {
	t.Parallel()
	inv, err := NewSimulated(4, "H100")
	if err != nil {
		t.Fatal(err)
	}
	if err := Restrict(inv, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	if got := Indices(inv); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("indices = %v", got)
	}
	if _, err := inv.MemoryUsed(0); !errors.Is(err, ErrNoSuchGPU) {
		t.Fatalf("GPU 0 after restrict: %v", err)
	}
	if got := UUIDs(inv, []int{3, 2}); !slices.Equal(got, []string{"GPU-sim-00000003", "GPU-sim-00000002"}) {
		t.Fatalf("uuids = %v", got)
	}
	if err := Restrict(inv, []int{0}); !errors.Is(err, ErrNoSuchGPU) {
		t.Fatalf("restrict to a GPU already dropped: %v", err)
	}
}

func TestSimKey(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"NVIDIA H100 80GB HBM3": "H100", "nvidia h200": "H200", "NVIDIA A100-SXM4-40GB": "A100-40G", "Tesla T4": ""} {
		if got := SimKey(name); got != want {
			t.Errorf("SimKey(%q) = %q, want %q", name, got, want)
		}
	}
}
