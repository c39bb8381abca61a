package reporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// metrics are the reporter's Prometheus metrics, registered on the
// registerer of Config.Metrics (the service's own registry; never the
// global default). Every per-study gauge is set from the study's report
// after each change, so a rebuild or a restart gives the same values.
type metrics struct {
	trials      *prometheus.GaugeVec
	rejections  *prometheus.GaugeVec
	frontSize   *prometheus.GaugeVec
	hypervolume *prometheus.GaugeVec
	lag         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		trials: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sgtune_trials",
			Help: "Trials of a study by outcome state (COMPLETE, FAILED, REJECTED), FAILED ones by failure class (oom, crash, timeout, unhealthy, bench-error, dead-letter), COMPLETE ones by feasibility (feasible, infeasible).",
		}, []string{"study", "state", "class"}),
		rejections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sgtune_rejections",
			Help: "Rejected candidates of a study by validation rule (a candidate failing two rules counts for both).",
		}, []string{"study", "rule"}),
		frontSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sgtune_front_size",
			Help: "Pareto-optimal trials of a study.",
		}, []string{"study"}),
		hypervolume: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sgtune_hypervolume",
			Help: "Hypervolume of a study's front against its fixed reference point (objective units multiplied).",
		}, []string{"study"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sgtune_outcome_to_front_seconds",
			Help:    "From an outcome's event time (its producer's clock) to the front that includes it stored in KV pareto.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.trials, m.rejections, m.frontSize, m.hypervolume, m.lag)
	}
	return m
}

// frontStored updates the study's gauges from its new front and observes
// the lag of the outcome that changed it.
func (m *metrics) frontStored(doc front.FrontDoc, occurredAt time.Time, now time.Time) {
	study := prometheus.Labels{"study": doc.StudyName}
	m.trials.DeletePartialMatch(study)
	m.rejections.DeletePartialMatch(study)
	c := doc.Counts
	m.trials.WithLabelValues(doc.StudyName, front.StateComplete, "feasible").Set(float64(c.Feasible))
	m.trials.WithLabelValues(doc.StudyName, front.StateComplete, "infeasible").Set(float64(c.Infeasible))
	for class, n := range c.FailedByClass {
		m.trials.WithLabelValues(doc.StudyName, front.StateFailed, class).Set(float64(n))
	}
	m.trials.WithLabelValues(doc.StudyName, front.StateRejected, "").Set(float64(c.Rejected))
	for rule, n := range c.RejectedByRule {
		m.rejections.WithLabelValues(doc.StudyName, rule).Set(float64(n))
	}
	m.frontSize.WithLabelValues(doc.StudyName).Set(float64(len(doc.ParetoFront)))
	m.hypervolume.WithLabelValues(doc.StudyName).Set(doc.Hypervolume)
	if !occurredAt.IsZero() {
		m.lag.Observe(max(now.Sub(occurredAt).Seconds(), 0))
	}
}
