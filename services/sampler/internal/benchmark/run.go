package benchmark

import (
	"errors"
	"fmt"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// Variant is one sampler configuration under test.
type Variant struct {
	// Name labels it in reports ("motpe", "nsga2-seed", ...).
	Name string
	// Algorithm is the sampling algorithm ("motpe", "nsga2", "random").
	Algorithm string
	// Acquisition of "motpe" (sampling.Options.Acquisition; "": the default).
	Acquisition string
	// IgnoreInvalid hides rejected and failed trials from the algorithm, as
	// the seed did by marking them pruned (sampling.Options.IgnoreInvalid).
	IgnoreInvalid bool
	// Batch is how many trials are in flight at once (1: sequential). With
	// more, the study is asynchronous: each outcome is told as soon as the
	// oldest trial in flight finishes, and a new proposal fills its slot.
	Batch int
}

// Run is one study of a Variant with one seed.
type Run struct {
	Variant string
	Seed    int64
	Budget  int
	// Points holds, per benchmarked trial in outcome order, the objective
	// values of a feasible result (spec units and directions), nil for a
	// failed or infeasible one.
	Points [][]float64
	// Configs are the configurations of Points (nil where Points is nil).
	Configs []events.Params
	// Counters are the study's counters at the end.
	Counters sampling.Counters
	// ProposeTimes are the durations of the Propose calls.
	ProposeTimes []time.Duration
}

// RunStudy runs one study of v on spec until budget trials are benchmarked
// (or the study stops on its own), judging and measuring each proposal with
// eval. The validator's dedup is emulated: a proposal whose canonical form
// was already proposed in this study is a Duplicate.
func RunStudy(spec study.Spec, v Variant, seed int64, budget int, eval Evaluator) (Run, error) {
	run := Run{Variant: v.Name, Seed: seed, Budget: budget}
	st, err := sampling.NewStudy(spec, sampling.Options{
		Algorithm: v.Algorithm, Acquisition: v.Acquisition, Seed: &seed, NTrials: budget, IgnoreInvalid: v.IgnoreInvalid,
	})
	if err != nil {
		return run, err
	}
	batch := max(v.Batch, 1)
	canon := map[string]int{}
	type inFlight struct {
		o      sampling.Outcome
		params events.Params
	}
	var queue []inFlight // benchmarked trials in flight, oldest first
	now := time.Unix(0, 0)
	for {
		done, _ := st.Done(now)
		if done && len(queue) == 0 {
			break
		}
		if !done {
			room := st.Room(batch)
			if room > 0 {
				t0 := time.Now()
				props, err := st.Propose(room)
				run.ProposeTimes = append(run.ProposeTimes, time.Since(t0))
				if err != nil && !errors.Is(err, sampling.ErrSpaceExhausted) {
					return run, err
				}
				for _, p := range props {
					o := judge(p, eval, canon)
					if o.Kind == sampling.Rejected || o.Kind == sampling.Duplicate {
						// The validator answers at once.
						if err := st.Tell(o); err != nil {
							return run, err
						}
						continue
					}
					queue = append(queue, inFlight{o: o, params: p.Params})
				}
				if len(props) > 0 && len(queue) < batch {
					continue // fill the free slots first
				}
			}
		}
		if len(queue) == 0 {
			if done, _ := st.Done(now); done {
				break
			}
			if st.Room(batch) == 0 {
				return run, fmt.Errorf("study stalled: nothing in flight and no room")
			}
			continue
		}
		f := queue[0]
		queue = queue[1:]
		if err := st.Tell(f.o); err != nil {
			return run, err
		}
		pt := objectivePoint(&spec, f.o)
		run.Points = append(run.Points, pt)
		if pt != nil {
			run.Configs = append(run.Configs, f.params)
		} else {
			run.Configs = append(run.Configs, nil)
		}
	}
	run.Counters = st.Counters()
	return run, nil
}

// judge turns a proposal into its outcome.
func judge(p sampling.Proposal, eval Evaluator, canon map[string]int) sampling.Outcome {
	v := eval.Evaluate(p.Params)
	o := sampling.Outcome{Trial: p.Trial, Kind: v.Kind, Rules: v.Rules, FailureClass: v.FailureClass, Metrics: v.Metrics,
		FailureCause: sampling.FailureCause(v.LogTail)}
	if v.Kind != sampling.Rejected && v.Canonical != "" {
		if _, seen := canon[v.Canonical]; seen {
			return sampling.Outcome{Trial: p.Trial, Kind: sampling.Duplicate, Rules: []string{"dedup.canonical"}}
		}
		canon[v.Canonical] = p.Trial
	}
	return o
}

// objectivePoint is the objective vector of a feasible completed outcome, else nil.
func objectivePoint(spec *study.Spec, o sampling.Outcome) []float64 {
	if o.Kind != sampling.Completed {
		return nil
	}
	vals, ok := spec.ObjectiveValues(o.Metrics)
	if !ok || len(spec.Violations(o.Metrics)) > 0 {
		return nil
	}
	return vals
}

// ParamsKey is a deterministic key of a configuration (study.ParamsKey).
func ParamsKey(p events.Params) string { return study.ParamsKey(p) }
