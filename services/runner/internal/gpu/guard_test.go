package gpu

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sgtune/sgtune/pkg/events"
)

// memInventory is an inventory whose memory use and readability the test sets.
type memInventory struct {
	mu      sync.Mutex
	used    map[int]uint64
	gone    error // Probe and MemoryUsed fail with it while set
	reopens int
}

func (m *memInventory) GPUs() []events.GPU {
	return []events.GPU{{Index: 0, UUID: "GPU-a"}, {Index: 1, UUID: "GPU-b"}, {Index: 2, UUID: "GPU-c"}}
}

func (m *memInventory) MemoryUsed(i int) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone != nil {
		return 0, m.gone
	}
	return m.used[i], nil
}

func (m *memInventory) set(i int, b uint64) {
	m.mu.Lock()
	m.used[i] = b
	m.mu.Unlock()
}

func (m *memInventory) Probe() error { _, err := m.MemoryUsed(0); return err }

func (m *memInventory) Reopen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reopens++
	return m.gone
}

func fastGuard(inv Inventory) *Guard {
	return NewGuard(inv, GuardConfig{ReleaseTimeout: 100 * time.Millisecond, PollEvery: 5 * time.Millisecond, Logger: zerolog.Nop()})
}

func TestGuard_quarantines_a_GPU_that_keeps_its_memory_until_it_releases(t *testing.T) {
	t.Parallel()
	inv := &memInventory{used: map[int]uint64{0: 40 << 30, 1: 40 << 30}}
	g := fastGuard(inv)
	go func() { time.Sleep(20 * time.Millisecond); inv.set(0, 0) }() // GPU 0 releases in time
	got := g.AwaitRelease([]int{0, 1}, "trial 7 of study s")
	if !slices.Equal(got, []int{1}) {
		t.Fatalf("quarantined %v, want [1]", got)
	}
	qs := g.Quarantined()
	if len(qs) != 1 || qs[0].UUID != "GPU-b" || !strings.Contains(qs[0].Reason, "40.0 GiB still used 100ms after trial 7 of study s stopped") {
		t.Fatalf("quarantine = %+v", qs)
	}
	g.Check()
	if got := g.QuarantinedIndices(); !slices.Equal(got, []int{1}) {
		t.Fatalf("still holding memory, but quarantine = %v", got)
	}
	inv.set(1, 200<<20) // under the residue
	g.Check()
	if got := g.Quarantined(); len(got) != 0 {
		t.Fatalf("released, but quarantine = %+v", got)
	}
}

func TestGuard_QuarantineBusy(t *testing.T) {
	t.Parallel()
	inv := &memInventory{used: map[int]uint64{2: 3 << 30}}
	g := fastGuard(inv)
	if got := g.QuarantineBusy(); !slices.Equal(got, []int{2}) {
		t.Fatalf("busy = %v", got)
	}
	if q := g.Quarantined(); len(q) != 1 || !strings.Contains(q[0].Reason, "3.0 GiB in use when the runner started") {
		t.Fatalf("quarantine = %+v", q)
	}
}

func TestGuard_pauses_while_NVML_is_gone_and_resumes(t *testing.T) {
	t.Parallel()
	inv := &memInventory{used: map[int]uint64{}}
	g := fastGuard(inv)
	g.Check()
	if p := g.Paused(); p != "" {
		t.Fatalf("paused %q with NVML present", p)
	}
	inv.mu.Lock()
	inv.gone = errors.New("Driver Not Loaded")
	inv.mu.Unlock()
	g.Check()
	if p := g.Paused(); !strings.Contains(p, "Driver Not Loaded") || !strings.Contains(p, "no new trials") {
		t.Fatalf("paused = %q", p)
	}
	// A trial ending meanwhile cannot have its release checked: quarantined at once.
	if got := g.AwaitRelease([]int{0}, "trial 1 of study s"); !slices.Equal(got, []int{0}) {
		t.Fatalf("quarantined %v", got)
	}
	inv.mu.Lock()
	inv.gone = nil
	inv.mu.Unlock()
	g.Check()
	if p := g.Paused(); p != "" || inv.reopens == 0 {
		t.Fatalf("paused %q after NVML came back (reopens %d)", p, inv.reopens)
	}
	if got := g.Quarantined(); len(got) != 0 {
		t.Fatalf("quarantine after NVML came back with free memory: %+v", got)
	}
}
