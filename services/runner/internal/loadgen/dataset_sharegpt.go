package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sgtune/sgtune/pkg/events"
)

// BytesPerToken estimates token counts of text without the model's
// tokenizer (about 4 bytes a token for English with BPE vocabularies of
// Llama's and GPT's size). It sizes a ShareGPT reply's output length and
// bench_serving's length filters; the lengths recorded are always the
// server's own counts.
const BytesPerToken = 4

// ShareGPT length filters, as bench_serving applies them (with lengths
// estimated from the text's bytes): too short to time, or longer than a
// 2048-token context.
const (
	shareGPTMinTokens  = 2
	shareGPTMaxPrompt  = 1024
	shareGPTMaxContext = 2048
)

// shareGPTDataset sends ShareGPT conversations' first human turns as text
// (through /generate or /v1/completions), asking for as many tokens as the
// reply that followed (or SharegptOutputLen). Conversations with fewer than
// two turns, with no human turn followed by a reply, or outside the length
// filters are skipped; a file with none usable is an error.
type shareGPTDataset struct {
	w     events.Workload
	items []shareGPTItem
}

type shareGPTItem struct {
	prompt    string
	outputLen int
}

func estimateTokens(s string) int { return (len(s) + BytesPerToken - 1) / BytesPerToken }

func newShareGPT(w events.Workload, _ []string) (Dataset, error) {
	if w.DatasetPath == "" {
		return nil, fmt.Errorf("%w: dataset sharegpt needs dataset_path (a ShareGPT JSON file)", ErrBadWorkload)
	}
	if w.SharegptOutputLen < 0 {
		return nil, fmt.Errorf("%w: sharegpt_output_len must not be negative, got %d", ErrBadWorkload, w.SharegptOutputLen)
	}
	items, err := readShareGPT(w.DatasetPath, w.SharegptOutputLen)
	if err != nil {
		return nil, err
	}
	return &shareGPTDataset{w: w, items: items}, nil
}

type shareGPTTurn struct {
	From  string `json:"from"`
	Value string `json:"value"`
}

func readShareGPT(path string, fixedOutput int) ([]shareGPTItem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWorkload, err)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}) }
	bad := func(off int64, field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: line %d: %s: %s", ErrBadWorkload, path, lineAt(off), field, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, bad(dec.InputOffset(), "file", "want a JSON array of conversations ([{\"conversations\": [{\"from\": \"human\", \"value\": ...}, ...]}, ...])")
	}
	var (
		items        []shareGPTItem
		firstNoHuman error
	)
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		var entry struct {
			Conversations []shareGPTTurn `json:"conversations"`
			Conversation  []shareGPTTurn `json:"conversation"`
		}
		if err := dec.Decode(&entry); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, bad(start, fmt.Sprintf("[%d].%s", i, te.Field), "want %s, got a JSON %s", te.Type, te.Value)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, bad(int64(len(data)), "file", "the JSON array is cut short")
			}
			return nil, bad(dec.InputOffset(), fmt.Sprintf("[%d]", i), "not JSON: %v", err)
		}
		turns := entry.Conversations
		if turns == nil {
			turns = entry.Conversation
		}
		if len(turns) < 2 {
			continue // bench_serving skips conversations with fewer than two turns
		}
		human := -1
		for j, t := range turns {
			if t.From == "human" || t.From == "user" {
				human = j
				break
			}
		}
		if human < 0 || human+1 >= len(turns) {
			if firstNoHuman == nil {
				firstNoHuman = bad(start, fmt.Sprintf("[%d].conversations", i), `no "from": "human" turn followed by a reply`)
			}
			continue
		}
		prompt, reply := turns[human].Value, turns[human+1].Value
		in, out := estimateTokens(prompt), estimateTokens(reply)
		if fixedOutput > 0 {
			out = fixedOutput
		}
		if in < shareGPTMinTokens || (fixedOutput == 0 && out < shareGPTMinTokens) ||
			(fixedOutput == 0 && (in > shareGPTMaxPrompt || in+out > shareGPTMaxContext)) {
			continue
		}
		items = append(items, shareGPTItem{prompt: prompt, outputLen: out})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(dec.InputOffset(), "file", "the JSON array does not end properly: %v", err)
	}
	if len(items) == 0 {
		if firstNoHuman != nil {
			return nil, fmt.Errorf("no usable conversation: %w", firstNoHuman)
		}
		return nil, fmt.Errorf("%w: %s: no conversation with a human turn and a reply within the length filters", ErrBadWorkload, path)
	}
	return items, nil
}

func (d *shareGPTDataset) Timed() bool { return false }

// Prompts samples n conversations without replacement (all of them when
// the file has fewer), in an order drawn from seed.
func (d *shareGPTDataset) Prompts(n int, seed uint64) ([]Prompt, error) {
	rng := newRNG(seed, 0x3c6ef372fe94f82b)
	order := rng.Perm(len(d.items))
	out := make([]Prompt, 0, min(n, len(order)))
	for _, k := range order[:min(n, len(order))] {
		out = append(out, Prompt{Text: d.items[k].prompt, OutputLen: d.items[k].outputLen})
	}
	return out, nil
}
