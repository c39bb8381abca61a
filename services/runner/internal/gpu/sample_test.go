package gpu

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeSampler returns scripted readings per GPU, one per call, repeating the last.
type fakeSampler struct {
	mu    sync.Mutex
	calls map[int]int
	seq   map[int][]Reading
}

func (f *fakeSampler) Sample(i int) (Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs, ok := f.seq[i]
	if !ok {
		return Reading{}, errors.New("no such GPU")
	}
	k := min(f.calls[i], len(rs)-1)
	f.calls[i]++
	return rs[k], nil
}

func TestMonitor_summarises_hand_computed_samples(t *testing.T) {
	t.Parallel()
	r := func(w uint32, util uint32, memGiB uint64, mj uint64) Reading {
		return Reading{PowerMilliwatts: w * 1000, UtilizationPct: util, MemoryUsedBytes: memGiB << 30,
			EnergyMillijoules: mj, HasPower: true, HasUtil: true, HasEnergy: true}
	}
	f := &fakeSampler{calls: map[int]int{}, seq: map[int][]Reading{
		0: {r(100, 0, 10, 1000), r(300, 100, 60, 301000)},
		1: {r(100, 50, 20, 5000), r(100, 50, 20, 105000)},
	}}
	m := StartMonitor(f, []int{0, 1}, time.Hour) // only the first and the last (Stop) samples
	s := m.Stop()
	if s.Samples != 2 {
		t.Fatalf("samples = %d", s.Samples)
	}
	// power sums per sample: 200 W then 400 W.
	if s.MeanPowerWatts != 300 || s.MaxPowerWatts != 400 {
		t.Fatalf("power mean %v max %v", s.MeanPowerWatts, s.MaxPowerWatts)
	}
	if s.PeakMemoryBytes != 60<<30 || s.PeakMemoryTotalBytes != 80<<30 {
		t.Fatalf("memory peak %d total %d", s.PeakMemoryBytes, s.PeakMemoryTotalBytes)
	}
	// utilisation: (0 + 50 + 100 + 50) / 4.
	if s.MeanUtilizationPct != 50 || s.MaxUtilizationPct != 100 {
		t.Fatalf("util mean %v max %v", s.MeanUtilizationPct, s.MaxUtilizationPct)
	}
	// energy: (301000-1000) + (105000-5000) mJ = 400 J.
	if !s.HasEnergy || s.EnergyJoules != 400 {
		t.Fatalf("energy %v (%v)", s.EnergyJoules, s.HasEnergy)
	}
}
