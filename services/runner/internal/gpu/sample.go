package gpu

import (
	"context"
	"sync"
	"time"
)

// Reading is one sample of a GPU's live state. Fields a GPU does not support
// are left zero and flagged false in Has*.
type Reading struct {
	PowerMilliwatts   uint32
	UtilizationPct    uint32 // percent of the last sample period a kernel ran
	MemoryUsedBytes   uint64
	EnergyMillijoules uint64 // cumulative since the driver loaded
	HasPower, HasUtil bool
	HasEnergy         bool
}

// Sampler is implemented by inventories that read live GPU state (NVML).
type Sampler interface {
	// Sample reads GPU index now; an error means nothing could be read.
	Sample(index int) (Reading, error)
}

// Summary aggregates the samples of a set of GPUs over an interval.
type Summary struct {
	// Samples taken (per GPU).
	Samples int
	// PeakMemoryBytes is the largest memory use seen on any one GPU;
	// PeakMemoryTotalBytes the largest sum over the GPUs at one sample.
	PeakMemoryBytes, PeakMemoryTotalBytes uint64
	// MeanUtilizationPct and MaxUtilizationPct over GPUs and samples.
	MeanUtilizationPct, MaxUtilizationPct float64
	// MeanPowerWatts is the mean over samples of the GPUs' summed power draw;
	// MaxPowerWatts the largest such sum.
	MeanPowerWatts, MaxPowerWatts float64
	// EnergyJoules is the energy counters' difference summed over the GPUs,
	// valid when HasEnergy.
	EnergyJoules float64
	HasEnergy    bool
	HasPower     bool
	HasUtil      bool
}

// Monitor samples GPUs every interval in its own goroutine until Stop.
type Monitor struct {
	s        Sampler
	gpus     []int
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}

	mu       sync.Mutex
	sum      Summary
	utilSum  float64
	utilN    int
	powerSum float64
	powerN   int
	energy0  map[int]uint64
	energy1  map[int]uint64
}

// StartMonitor begins sampling gpus of s every interval (at least 50 ms);
// the first sample is taken before it returns.
func StartMonitor(s Sampler, gpus []int, interval time.Duration) *Monitor {
	interval = max(interval, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{s: s, gpus: append([]int(nil), gpus...), interval: interval, cancel: cancel,
		done: make(chan struct{}), energy0: map[int]uint64{}, energy1: map[int]uint64{}}
	m.sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *Monitor) sample() {
	var memTotal uint64
	var power float64
	powerOK := len(m.gpus) > 0
	readings := make([]Reading, 0, len(m.gpus))
	for _, g := range m.gpus {
		r, err := m.s.Sample(g)
		if err != nil {
			powerOK = false
			continue
		}
		readings = append(readings, r)
		memTotal += r.MemoryUsedBytes
		power += float64(r.PowerMilliwatts) / 1000
		powerOK = powerOK && r.HasPower
		m.mu.Lock()
		if r.HasEnergy {
			if _, ok := m.energy0[g]; !ok {
				m.energy0[g] = r.EnergyMillijoules
			}
			m.energy1[g] = r.EnergyMillijoules
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sum.Samples++
	m.sum.PeakMemoryTotalBytes = max(m.sum.PeakMemoryTotalBytes, memTotal)
	for _, r := range readings {
		m.sum.PeakMemoryBytes = max(m.sum.PeakMemoryBytes, r.MemoryUsedBytes)
		if r.HasUtil {
			m.sum.HasUtil = true
			m.utilSum += float64(r.UtilizationPct)
			m.utilN++
			m.sum.MaxUtilizationPct = max(m.sum.MaxUtilizationPct, float64(r.UtilizationPct))
		}
	}
	if powerOK {
		m.sum.HasPower = true
		m.powerSum += power
		m.powerN++
		m.sum.MaxPowerWatts = max(m.sum.MaxPowerWatts, power)
	}
}

// Stop takes a last sample, stops the goroutine and returns the summary.
func (m *Monitor) Stop() Summary {
	m.cancel()
	<-m.done
	m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sum
	if m.utilN > 0 {
		s.MeanUtilizationPct = m.utilSum / float64(m.utilN)
	}
	if m.powerN > 0 {
		s.MeanPowerWatts = m.powerSum / float64(m.powerN)
	}
	if len(m.energy0) == len(m.gpus) && len(m.gpus) > 0 {
		var mj uint64
		ok := true
		for g, e0 := range m.energy0 {
			e1 := m.energy1[g]
			if e1 < e0 {
				ok = false
				break
			}
			mj += e1 - e0
		}
		if ok {
			s.EnergyJoules, s.HasEnergy = float64(mj)/1000, true
		}
	}
	return s
}
