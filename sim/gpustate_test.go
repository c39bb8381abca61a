package sim

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCUDADevices_order_as_CUDA_numbers_them(t *testing.T) {
	t.Parallel()
	host, err := FakeHost(envOf(map[string]string{EnvFakeNVMLDir: "/x", EnvFakeNVMLGPUs: "4", EnvFakeNVMLModel: "A10,H100"}))
	if err != nil || len(host) != 4 || host[1].Model.Name != "H100" || host[2].UUID != "GPU-fa4e0000-0000-4000-8000-000000000002" {
		t.Fatalf("host %+v, %v", host, err)
	}
	indices := func(gs []FakeGPU) []int {
		out := make([]int, len(gs))
		for i, g := range gs {
			out[i] = g.Index
		}
		return out
	}
	tests := []struct {
		name      string
		visible   string
		order     string
		expected  []int
		withError bool
	}{
		{"PCI order: ordinals are NVML indices", "0,1", "PCI_BUS_ID", []int{0, 1}, false},
		{"default order: fastest first", "0,1", "", []int{1, 3}, false},
		{"unset: every GPU", "", "PCI_BUS_ID", []int{0, 1, 2, 3}, false},
		{"UUID prefix", "GPU-fa4e0000-0000-4000-8000-000000000003", "", []int{3}, false},
		{"ordinal past the end", "4", "PCI_BUS_ID", nil, true},
		{"ambiguous prefix", "GPU-fa4e", "", nil, true},
	}
	for _, tt := range tests {
		got, err := CUDADevices(host, tt.visible, tt.order)
		if tt.withError != (err != nil) || (err == nil && !slices.Equal(indices(got), tt.expected)) {
			t.Errorf("%s: %v, %v; want %v (error %v)", tt.name, indices(got), err, tt.expected, tt.withError)
		}
	}
	if none, err := FakeHost(envOf(nil)); none != nil || err != nil {
		t.Fatalf("no fake host: %v, %v", none, err)
	}
	if _, err := FakeHost(envOf(map[string]string{EnvFakeNVMLDir: "/x", EnvFakeNVMLModel: "V100"})); err == nil {
		t.Fatal("an unknown model is accepted")
	}
}

func readHold(t *testing.T, dir string, gpu int) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "holds", "gpu"+strconv.Itoa(gpu)+"."+strconv.Itoa(os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		n, _ := strconv.ParseInt(f[1], 10, 64)
		out[f[0]] = n
	}
	return out
}

func TestGPUState_holds_and_releases_late_when_told(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{EnvFakeNVMLDir: dir, EnvFakeNVMLGPUs: "4", EnvCUDADevices: "2",
		EnvCUDADeviceOrder: "PCI_BUS_ID", EnvGPUReleaseDelay: "5s", EnvGPUReleaseDelayGPUs: "GPU-fa4e0000-0000-4000-8000-000000000002"})
	g, err := startGPUState(env, &server{})
	if err != nil {
		t.Fatal(err)
	}
	h := readHold(t, dir, 2)
	if h["mem_bytes"] != 1<<29 || h["end_ms"] != 0 {
		t.Fatalf("while starting: %v (want the CUDA context, 0.5 GiB)", h)
	}
	before := time.Now()
	g.stop()
	h = readHold(t, dir, 2)
	if end := time.UnixMilli(h["end_ms"]); end.Before(before.Add(5*time.Second - time.Millisecond)) {
		t.Fatalf("late release at %s, want >= %s", end, before.Add(5*time.Second))
	}
	if _, err := startGPUState(envOf(map[string]string{EnvFakeNVMLDir: dir, EnvCUDADevices: "7"}), &server{}); err == nil ||
		!strings.Contains(err.Error(), "invalid device ordinal") {
		t.Fatalf("a GPU the host lacks: %v", err)
	}
}
