package trial

import (
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// putPerGPU adds the GPU count and the per-GPU twin of every per-server rate
// (study.AddPerGPU) to a result, each of its load levels and each workload
// of a mix, so that an 8-GPU server and a 1-GPU one compare per GPU. The count is the GPUs the
// server was launched on; a result without metrics (a failure before any
// measurement) gets none.
func putPerGPU(res *events.TrialResult, launched []int, needed int) {
	n := len(launched)
	if n == 0 {
		n = needed // the exec backend may run without GPU indices
	}
	if len(res.Metrics) > 0 {
		study.AddPerGPU(res.Metrics, res.Units, n)
	}
	addPoints(res.LoadPoints, n)
	// A workload mix: every workload's own metrics and levels too.
	for _, m := range res.WorkloadMetrics {
		if len(m) > 0 {
			study.AddPerGPU(m, nil, n)
		}
	}
	for _, pts := range res.WorkloadLoadPoints {
		addPoints(pts, n)
	}
}

func addPoints(pts []events.LoadPoint, gpus int) {
	for i := range pts {
		if len(pts[i].Metrics) > 0 {
			study.AddPerGPU(pts[i].Metrics, nil, gpus)
		}
	}
}
