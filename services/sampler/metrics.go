package sampler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// metrics are the sampler's Prometheus metrics, registered on Config.Metrics
// (the service's own registry; never the global default).
type metrics struct {
	propose  prometheus.Histogram
	proposed prometheus.Counter
	inFlight prometheus.Gauge
	counts   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, studyName string, feedRestarts func() int64) *metrics {
	study := prometheus.Labels{"study": studyName}
	m := &metrics{
		propose: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "sgtune_proposal_seconds",
			Help:        "Time the sampler took to propose candidates, per proposal (one call proposes as many as there is room for; its time is divided among them).",
			ConstLabels: study,
			Buckets:     []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		proposed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sgtune_proposals_total", Help: "Candidates proposed by this sampler process.", ConstLabels: study,
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sgtune_trials_in_flight", Help: "Trials proposed and not yet finished (validating, queued or running).", ConstLabels: study,
		}),
		counts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sgtune_study_trials", Help: "The study's counters as the sampler keeps them: proposed, benchmarked, rejected, and the n_trials budget.", ConstLabels: study,
		}, []string{"kind"}),
	}
	restarts := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "sgtune_sampler_feed_restarts_total",
		Help:        "Times the sampler's feeds (outcomes, partial measurements) had to follow their stream again: a consumer that went quiet or ended with a server or cluster node.",
		ConstLabels: study,
	}, func() float64 { return float64(feedRestarts()) })
	if reg != nil {
		reg.MustRegister(m.propose, m.proposed, m.inFlight, m.counts, restarts)
	}
	return m
}

// proposedBatch observes one Propose call that returned n proposals.
func (m *metrics) proposedBatch(n int, took time.Duration) {
	if m == nil || n == 0 {
		return
	}
	per := took.Seconds() / float64(n)
	for range n {
		m.propose.Observe(per)
	}
	m.proposed.Add(float64(n))
}

// counters sets the gauges from the study's counters.
func (m *metrics) counters(c sampling.Counters, nTrials int) {
	if m == nil {
		return
	}
	m.inFlight.Set(float64(c.InFlight))
	m.counts.WithLabelValues("proposed").Set(float64(c.Proposed))
	m.counts.WithLabelValues("benchmarked").Set(float64(c.Benchmarked()))
	m.counts.WithLabelValues("rejected").Set(float64(c.Rejected))
	m.counts.WithLabelValues("budget").Set(float64(nTrials))
}
