package trial

import (
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// putPerGPU adds the GPU count and the per-GPU twin of every per-server rate
// (study.AddPerGPU) to a result and to each of its load levels, so that an
// 8-GPU server and a 1-GPU one compare per GPU. The count is the GPUs the
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
	for i := range res.LoadPoints {
		if len(res.LoadPoints[i].Metrics) > 0 {
			study.AddPerGPU(res.LoadPoints[i].Metrics, nil, n)
		}
	}
}
