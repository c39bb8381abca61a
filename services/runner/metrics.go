package runner

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/events"
)

// collector exposes the runner's state to Prometheus at scrape time, from
// the same status the runner heartbeats into the fleet bucket (so /metrics
// and `sgtune gpus` never disagree), plus the depth of the trial queues it
// consumes. It is registered on Config.Metrics (the service's own registry;
// never the global default).
type collector struct {
	runner  string
	status  func() events.RunnerStatus
	js      jetstream.JetStream
	classes []int

	gpus, busy, quarantined, trials, slots, queue *prometheus.Desc
}

func newCollector(runnerID string, status func() events.RunnerStatus, js jetstream.JetStream, classes []int) *collector {
	runner := prometheus.Labels{"runner": runnerID}
	return &collector{
		runner: runnerID, status: status, js: js, classes: classes,
		gpus:        prometheus.NewDesc("sgtune_runner_gpus", "GPUs of the runner's host.", nil, runner),
		busy:        prometheus.NewDesc("sgtune_runner_gpus_busy", "GPUs running a trial's server now.", nil, runner),
		quarantined: prometheus.NewDesc("sgtune_runner_gpus_quarantined", "GPUs the runner will not use (their memory was not released, or NVML reports them failing).", nil, runner),
		trials:      prometheus.NewDesc("sgtune_runner_trials_running", "Trials the runner runs now.", nil, runner),
		slots:       prometheus.NewDesc("sgtune_runner_slots", "Trials the runner may run at once.", nil, runner),
		// Every runner sees the same queues: the runner label keeps their
		// series apart (aggregate with max by (gpu_class), not sum).
		queue: prometheus.NewDesc("sgtune_queue_depth", "Trials queued and not yet claimed, per GPU class (the GPUs one trial needs), as seen by this runner (aggregate with max by (gpu_class)).",
			[]string{"gpu_class"}, runner),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.gpus, c.busy, c.quarantined, c.trials, c.slots, c.queue} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Queue depths come from the trial
// consumers' info (one request each, bounded by 2 s); a class whose consumer
// cannot be read is left out of this scrape.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	quarantined := len(st.Quarantined)
	gauge(c.gpus, len(st.GPUs))
	gauge(c.busy, max(len(st.GPUs)-len(st.FreeGPUs)-quarantined, 0))
	gauge(c.quarantined, quarantined)
	gauge(c.trials, st.Busy)
	gauge(c.slots, st.Slots)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.classes {
		cons, err := c.js.Consumer(ctx, events.StreamTrials, events.TrialsDurable(n))
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		gauge(c.queue, int(info.NumPending), events.GPUClass(n))
	}
}

var _ prometheus.Collector = (*collector)(nil)

// classesUpTo lists the GPU classes 1..n a host of n GPUs consumes.
func classesUpTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}
