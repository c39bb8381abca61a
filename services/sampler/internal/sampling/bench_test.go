package sampling

import (
	"github.com/rs/zerolog"
	"syscall"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
)

// studyWith returns a seed-space study with n benchmarked trials.
func studyWith(b *testing.B, algo string, n int) (*Study, []Proposal, []Outcome) {
	b.Helper()
	sp := study.Default()
	sp.Sampler.Algorithm = algo
	sp.NTrials = 100 * n
	s, err := NewStudy(sp, Options{Algorithm: study.AlgoRandom})
	if err != nil {
		b.Fatal(err)
	}
	props, err := s.Propose(n)
	if err != nil {
		b.Fatal(err)
	}
	var outs []Outcome
	for i, p := range props {
		o := Outcome{Trial: p.Trial, Kind: Completed, Metrics: map[string]float64{
			"mean_ttft_ms": float64((i * 7919) % 1000), "output_throughput": float64((i * 104729) % 5000)}}
		if i%4 == 0 {
			o = Outcome{Trial: p.Trial, Kind: Rejected, Rules: []string{"seed.gpu_count"}}
		}
		outs = append(outs, o)
		if err := s.Tell(o); err != nil {
			b.Fatal(err)
		}
	}
	s.algo = algo
	var err2 error
	if s.prop, err2 = newProposer(algo, s, 1, zerolog.Nop()); err2 != nil {
		b.Fatal(err2)
	}
	return s, props, outs
}

// BenchmarkPropose1000 is one proposal with 1,000 finished trials (target ≤ 50 ms).
func BenchmarkPropose1000(b *testing.B) {
	for _, algo := range []string{study.AlgoGPEHVI, study.AlgoNSGA2} {
		b.Run(algo, func(b *testing.B) {
			s, _, _ := studyWith(b, algo, 1000)
			b.ResetTimer()
			c0 := cpuTime()
			for b.Loop() {
				if _, err := s.Propose(1); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
		})
	}
}

// BenchmarkRestore10000 rebuilds a 10,000-trial study (target ≤ 2 s with the replay).
func BenchmarkRestore10000(b *testing.B) {
	_, props, outs := studyWith(b, study.AlgoRandom, 10000)
	sp := study.Default()
	b.ResetTimer()
	c0 := cpuTime()
	defer func() { reportCPU(b, c0) }()
	for b.Loop() {
		s, err := NewStudy(sp, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Restore(props, outs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPropose256InFlight is one proposal of a study with 2,000
// finished trials and 256 in flight, in steady state: each iteration tells
// the oldest trial in flight and proposes one (target ≤ 50 ms, issue 11.6:
// a 256-GPU fleet).
func BenchmarkPropose256InFlight(b *testing.B) {
	for _, algo := range study.Algorithms() {
		if study.SingleObjectiveOnly(algo) {
			continue
		}
		b.Run(algo, func(b *testing.B) {
			s, _, _ := studyWith(b, algo, 2000)
			pending, err := s.Propose(256)
			if err != nil || len(pending) != 256 {
				b.Fatalf("propose 256: %d, %v", len(pending), err)
			}
			i := 0
			b.ResetTimer()
			c0 := cpuTime()
			for b.Loop() {
				p := pending[0]
				pending = pending[1:]
				o := Outcome{Trial: p.Trial, Kind: Completed, Metrics: map[string]float64{
					"mean_ttft_ms": float64((i * 7919) % 1000), "output_throughput": float64((i * 104729) % 5000)}}
				i++
				if err := s.Tell(o); err != nil {
					b.Fatal(err)
				}
				props, err := s.Propose(1)
				if err != nil {
					b.Fatal(err)
				}
				pending = append(pending, props...)
			}
			reportCPU(b, c0)
		})
	}
}

// cpuTime is the process's user+system CPU time so far: on the shared
// machine (load far above its cores) wall-clock time per operation says more
// about the neighbours than about the sampler, so the benchmarks also report
// CPU time per operation (cpu-ms/op).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per iteration since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
