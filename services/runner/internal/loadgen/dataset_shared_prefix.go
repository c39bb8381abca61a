package loadgen

import (
	"fmt"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// sharedPrefixDataset is bench_serving's "generated-shared-prefix": the
// GSPPromptsPerGroup prompts of each of GSPNumGroups groups share one system
// prompt of GSPSystemPromptLen random token ids, followed by a question of
// GSPQuestionLen of their own; each asks for GSPOutputLen tokens. The
// prompts of all groups are shuffled together, and there are always
// groups × prompts per group of them (num_prompts is not used, as in
// bench_serving).
type sharedPrefixDataset struct{ w events.Workload }

func newSharedPrefix(w events.Workload, _ []string) (Dataset, error) {
	if err := study.ValidateSharedPrefix("workload", w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWorkload, err)
	}
	return sharedPrefixDataset{w}, nil
}

func (d sharedPrefixDataset) Timed() bool { return false }

func (d sharedPrefixDataset) Prompts(_ int, seed uint64) ([]Prompt, error) {
	rng := newRNG(seed, 0xbb67ae8584caa73b)
	vocab := vocabOf(d.w)
	w := d.w
	out := make([]Prompt, 0, w.GSPNumGroups*w.GSPPromptsPerGroup)
	for range w.GSPNumGroups {
		system := make([]int, w.GSPSystemPromptLen)
		randomIDs(rng, system, vocab)
		for range w.GSPPromptsPerGroup {
			ids := make([]int, w.GSPSystemPromptLen+w.GSPQuestionLen)
			copy(ids, system)
			randomIDs(rng, ids[w.GSPSystemPromptLen:], vocab)
			out = append(out, Prompt{InputIDs: ids, OutputLen: w.GSPOutputLen})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}
