package loadgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Prompt is one request a dataset yields.
type Prompt struct {
	// InputIDs is the prompt as token ids; nil when it is Text.
	InputIDs []int
	// Text is the prompt as text (ShareGPT, a prompt file).
	Text string
	// OutputLen is the number of tokens to ask for (max new tokens).
	OutputLen int
	// Arrival is when to send it, as an offset from the benchmark's start;
	// only a timed dataset (a trace) sets it.
	Arrival time.Duration
}

// Dataset yields a benchmark's prompts. Adding a dataset is one file: its
// type and its constructor, named in openDataset's table.
type Dataset interface {
	// Prompts returns n prompts drawn with seed, or the dataset's own fixed
	// set (a trace's first n records; the shared-prefix groups); they are
	// built before anything is sent.
	Prompts(n int, seed uint64) ([]Prompt, error)
	// Timed reports whether prompts carry their own arrival offsets, which
	// replace the workload's request_rate.
	Timed() bool
}

// datasetConstructors build a dataset from a workload; one that reads a
// file parses it at once, so bad input is reported before anything is sent.
var datasetConstructors = map[string]func(w events.Workload, prompts []string) (Dataset, error){
	DatasetRandomID:     newRandomIDs,
	DatasetPrompts:      newPromptFile,
	DatasetMooncake:     newMooncake,
	DatasetSharedPrefix: newSharedPrefix,
	DatasetShareGPT:     newShareGPT,
}

// OpenDataset builds w's dataset (prompts, when set, replace the prompt
// file of the "prompts" dataset). Errors wrap ErrBadWorkload and name the
// file, the line and the field at fault.
func OpenDataset(w events.Workload, prompts []string) (Dataset, error) {
	name := w.Dataset
	if name == "" {
		name = DatasetRandomID
	}
	mk, ok := datasetConstructors[name]
	if !ok {
		known := make([]string, 0, len(datasetConstructors))
		for k := range datasetConstructors {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("%w: dataset %q (known: %s)", ErrBadWorkload, name, strings.Join(known, ", "))
	}
	return mk(w, prompts)
}

// randomIDs fills ids with token ids in [1, vocab) (0 is often a special token).
func randomIDs(rng *rand.Rand, ids []int, vocab int) {
	for j := range ids {
		ids[j] = 1 + rng.IntN(vocab-1)
	}
}

func vocabOf(w events.Workload) int {
	if w.VocabSize <= 1 {
		return DefaultVocabSize
	}
	return w.VocabSize
}

// newRNG is the generator every dataset draws from; stream separates the
// uses of one seed (lengths, ids, arrivals).
func newRNG(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }
