package front

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestPrunedTrialsCountButNeverJoinTheFront(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	a, b := complete(0, 50, 2000), complete(1, 40, 2500)
	a.GPUSeconds, b.GPUSeconds = 1800, 3600
	// Trial 2's estimates, had they held, would dominate both: it still
	// stays off the front (it was stopped before it measured everything).
	p := complete(2, 10, 9000)
	p.State, p.Reason, p.GPUSeconds = StatePruned, "stopped early (sampler): dominated by trial 1", 900
	fold(t, r, a, b, p, failed(3, "oom"))
	doc := r.Front()
	if got := frontTrials(doc); !slices.Equal(got, []int{1}) {
		t.Fatalf("front %v, want [1]", got)
	}
	c := doc.Counts
	if c.Benchmarked != 4 || c.Pruned != 1 || c.Completed != 2 || c.Failed != 1 || c.Feasible != 2 {
		t.Fatalf("counts %+v", c)
	}
	if doc.GPUHours != 1.75 {
		t.Fatalf("gpu_hours = %v, want (1800+3600+900)/3600", doc.GPUHours)
	}
	rec := r.Results().Trials[2]
	if rec.State != StatePruned || rec.ParetoOptimal || rec.Feasible || rec.Objectives["tps"] != 9000 || rec.GPUSeconds != 900 {
		t.Fatalf("pruned record %+v", rec)
	}
	var out bytes.Buffer
	if err := Print(&out, doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 failed; 1 pruned") || !strings.Contains(out.String(), "GPU time: 1.75 GPU-hours") {
		t.Fatalf("console:\n%s", out.String())
	}
}
