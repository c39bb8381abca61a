package loadgen

import (
	"fmt"

	"github.com/sgtune/sgtune/pkg/events"
)

// randomIDsDataset is bench_serving's "random-ids": random token ids, input
// and output lengths drawn from [max(int(L*ratio), 1), L].
type randomIDsDataset struct{ w events.Workload }

func newRandomIDs(w events.Workload, _ []string) (Dataset, error) {
	if w.RandomInputLen < 1 || w.RandomOutputLen < 1 {
		return nil, fmt.Errorf("%w: random_input_len and random_output_len must be at least 1", ErrBadWorkload)
	}
	return randomIDsDataset{w}, nil
}

func (d randomIDsDataset) Timed() bool { return false }

func (d randomIDsDataset) Prompts(n int, seed uint64) ([]Prompt, error) {
	rng := newRNG(seed, 0x9e3779b97f4a7c15)
	vocab := vocabOf(d.w)
	out := make([]Prompt, n)
	for i := range out {
		ids := make([]int, drawLen(rng, d.w.RandomInputLen, d.w.RandomRangeRatio))
		randomIDs(rng, ids, vocab)
		out[i] = Prompt{InputIDs: ids, OutputLen: drawLen(rng, d.w.RandomOutputLen, d.w.RandomRangeRatio)}
	}
	return out, nil
}

// promptFileDataset sends prompts from a file (one a line) as text, drawn
// with replacement; output lengths as random-ids draws them.
type promptFileDataset struct {
	w       events.Workload
	prompts []string
}

func newPromptFile(w events.Workload, prompts []string) (Dataset, error) {
	if len(prompts) == 0 {
		if w.PromptFile == "" {
			return nil, fmt.Errorf("%w: dataset prompts needs a prompt file", ErrBadWorkload)
		}
		var err error
		if prompts, err = ReadPrompts(w.PromptFile); err != nil {
			return nil, err
		}
	}
	if w.RandomOutputLen < 1 {
		return nil, fmt.Errorf("%w: random_output_len must be at least 1", ErrBadWorkload)
	}
	return promptFileDataset{w: w, prompts: prompts}, nil
}

func (d promptFileDataset) Timed() bool { return false }

func (d promptFileDataset) Prompts(n int, seed uint64) ([]Prompt, error) {
	rng := newRNG(seed, 0x9e3779b97f4a7c15)
	out := make([]Prompt, n)
	for i := range out {
		out[i] = Prompt{Text: d.prompts[rng.IntN(len(d.prompts))], OutputLen: drawLen(rng, d.w.RandomOutputLen, d.w.RandomRangeRatio)}
	}
	return out, nil
}
