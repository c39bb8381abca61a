package sampling

import (
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/services/sampler/internal/pruning"
)

// pruneStudy is a toy study with a few completed trials and one running.
func pruneStudy(t *testing.T) (*Study, int) {
	t.Helper()
	sp := toySpec("random", 20)
	sp.Sampler.StartupTrials = 2
	seed := int64(3)
	s, err := NewStudy(sp, Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	props, err := s.Propose(4)
	if err != nil || len(props) != 4 {
		t.Fatalf("propose: %v %d", err, len(props))
	}
	// Trial 0 is the baseline; 1 and 2 complete; 3 runs.
	for i, m := range []map[string]float64{{"m1": 1, "m2": 5}, {"m1": 0.5, "m2": 8}, {"m1": 2, "m2": 9}} {
		if err := s.Tell(Outcome{Trial: props[i].Trial, Kind: Completed, Metrics: m, GPUSeconds: 100}); err != nil {
			t.Fatal(err)
		}
	}
	return s, props[3].Trial
}

func measurement(m1, m2 float64) events.Measurement {
	return events.Measurement{Step: 1, Fraction: 0.3, Requests: 100, Metrics: map[string]float64{"m1": m1, "m2": m2}}
}

func TestShouldStop(t *testing.T) {
	t.Parallel()
	s, running := pruneStudy(t)
	front := s.PruneFront()
	if len(front) != 2 {
		t.Fatalf("front %+v, want trials 1 (0.5, 8) and 2 (2, 9)", front)
	}
	if d := s.ShouldStop(running, measurement(3, 4), pruning.Policy{}); !d.Stop || !strings.Contains(d.Reason, "dominated by trial") {
		t.Fatalf("a trial far behind the front runs on: %s", d.Reason)
	}
	if d := s.ShouldStop(running, measurement(0.4, 8.5), pruning.Policy{}); d.Stop {
		t.Fatalf("a trial that improves the front is stopped: %s", d.Reason)
	}
	if d := s.ShouldStop(0, measurement(3, 4), pruning.Policy{}); d.Stop || !strings.Contains(d.Reason, "outcome") {
		t.Fatalf("a finished trial: %s", d.Reason)
	}
	if d := s.ShouldStop(99, measurement(3, 4), pruning.Policy{}); d.Stop {
		t.Fatalf("an unknown trial: %s", d.Reason)
	}
	// Once pruned, the trial counts as benchmarked and is never on the front.
	if err := s.Tell(Outcome{Trial: running, Kind: Pruned, Metrics: map[string]float64{"m1": 0.1, "m2": 9.5}, GPUSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	if c := s.Counters(); c.Pruned != 1 || c.Benchmarked() != 4 || c.GPUSeconds != 330 {
		t.Fatalf("counters %+v", c)
	}
	if len(s.PruneFront()) != 2 {
		t.Fatalf("the pruned trial joined the front: %+v", s.PruneFront())
	}
}

func TestShouldStopSparesTheBaselineAndStartup(t *testing.T) {
	t.Parallel()
	sp := toySpec("random", 20)
	sp.Sampler.StartupTrials = 5
	seed := int64(3)
	s, err := NewStudy(sp, Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.Propose(3)
	if d := s.ShouldStop(props[0].Trial, measurement(3, 4), pruning.Policy{}); d.Stop || !strings.Contains(d.Reason, "baseline") {
		t.Fatalf("baseline: %s", d.Reason)
	}
	_ = s.Tell(Outcome{Trial: props[1].Trial, Kind: Completed, Metrics: map[string]float64{"m1": 0.5, "m2": 8}})
	if d := s.ShouldStop(props[2].Trial, measurement(3, 4), pruning.Policy{}); d.Stop || !strings.Contains(d.Reason, "startup") {
		t.Fatalf("during the startup trials: %s", d.Reason)
	}
}

func TestGPUHoursBudget(t *testing.T) {
	t.Parallel()
	sp := toySpec("random", 100)
	sp.GPUHours = 0.1 // 360 GPU-seconds
	seed := int64(1)
	s, err := NewStudy(sp, Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	for i := 0; ; i++ {
		if done, why := s.Done(now); done {
			if why != StopGPUHours || i != 4 {
				t.Fatalf("stopped after %d trials (%s), want 4 trials of 100 GPU-seconds (gpu_hours budget)", i, why)
			}
			return
		}
		p, err := s.Propose(1)
		if err != nil {
			t.Fatal(err)
		}
		o := toyEval(p[0].Params, sp.Space)
		o.Trial, o.GPUSeconds = p[0].Trial, 100
		if o.Kind == Rejected {
			o.GPUSeconds = 0
			i--
		}
		if err := s.Tell(o); err != nil {
			t.Fatal(err)
		}
	}
}
