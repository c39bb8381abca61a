package sampler

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/natsio"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// WarmStartStudy is a finished study's record for a warm start (spec
// sampler.warm_start): its spec and its outcomes as wire events.
type WarmStartStudy struct {
	Name       string
	Spec       study.Spec
	Results    []events.TrialResult
	Rejections []events.CandidateRejected
}

// newPrior turns finished studies into the domain's prior; a study with
// another parameter space is a spec error naming it.
func newPrior(spec study.Spec, studies []WarmStartStudy) (*sampling.Prior, error) {
	ps := make([]sampling.PriorStudy, 0, len(studies))
	for _, w := range studies {
		p := sampling.PriorStudy{Name: w.Name, Space: w.Spec.Space}
		for _, r := range w.Results {
			if o, err := natsio.OutcomeFromResult(r); err == nil {
				p.Outcomes = append(p.Outcomes, o)
			}
		}
		for _, r := range w.Rejections {
			p.Outcomes = append(p.Outcomes, natsio.OutcomeFromRejection(r))
		}
		ps = append(ps, p)
	}
	prior, err := sampling.NewPrior(spec, ps)
	if err != nil {
		return nil, fmt.Errorf("%w: sampler.warm_start: %w", study.ErrInvalidSpec, err)
	}
	return prior, nil
}

// readWarmStart reads the spec's warm-start studies from NATS (never
// changing them). A study that does not exist, or whose stored spec does
// not decode, is a spec error naming it.
func readWarmStart(ctx context.Context, js jetstream.JetStream, spec study.Spec) ([]WarmStartStudy, []string, error) {
	var out []WarmStartStudy
	var notes []string
	for _, name := range spec.Sampler.WarmStart {
		rec, exists, err := natsio.ReadRecord(ctx, js, name)
		if err != nil {
			return nil, nil, fmt.Errorf("sampler.warm_start: %w", err)
		}
		if !exists {
			return nil, nil, fmt.Errorf("%w: sampler.warm_start: study %q does not exist (no entry in %s)", study.ErrInvalidSpec, name, events.BucketStudies)
		}
		ws, err := study.FromJSON(rec.State.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: sampler.warm_start: study %q: its stored spec: %w", study.ErrInvalidSpec, name, err)
		}
		if rec.State.Status != events.StudyComplete {
			notes = append(notes, fmt.Sprintf("warm start from study %q, which is %s, not complete: using its %d outcomes so far", name, rec.State.Status, len(rec.Results)+len(rec.Rejections)))
		}
		out = append(out, WarmStartStudy{Name: name, Spec: ws, Results: rec.Results, Rejections: rec.Rejections})
	}
	return out, notes, nil
}
