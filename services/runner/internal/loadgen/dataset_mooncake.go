package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// MooncakeBlockTokens is the tokens of one Mooncake hash id: requests whose
// hash_ids share a leading run share that many tokens per shared id.
const MooncakeBlockTokens = 512

// maxTraceSpan bounds a trace's timestamps (ms since its first request): a
// later one is a unit mistake (seconds or µs since the epoch), not a replay
// anyone wants to wait for.
const maxTraceSpan = 7 * 24 * time.Hour

// mooncakeRecord is one line of a Mooncake trace.
type mooncakeRecord struct {
	line      int
	timestamp float64 // ms since the trace's first request
	inputLen  int
	outputLen int
	hashIDs   []int64
}

// mooncakeDataset replays a Mooncake-format trace (one JSON object a line:
// timestamp in ms since the first request, input_length, output_length,
// hash_ids) at its recorded arrival times times the slowdown factor, open
// loop. The prompt of a record is its hash_ids' blocks of
// MooncakeBlockTokens token ids each, so requests that share a leading run
// of hash ids share that prefix exactly; the last block is cut to
// input_length, and tokens beyond the blocks are the record's own. A
// record's block content comes from the seed, so each load level of a
// ladder gets fresh blocks with the same sharing (no level finds the
// previous level's prefixes in the server's cache).
type mooncakeDataset struct {
	w       events.Workload
	records []mooncakeRecord // the first num_prompts lines, sorted by timestamp
}

func newMooncake(w events.Workload, _ []string) (Dataset, error) {
	if w.DatasetPath == "" {
		return nil, fmt.Errorf("%w: dataset mooncake needs dataset_path (a JSONL trace)", ErrBadWorkload)
	}
	slowdown := w.MooncakeSlowdownFactor
	if slowdown == 0 {
		slowdown = 1
	}
	if !(slowdown > 0) || math.IsInf(slowdown, 0) {
		return nil, fmt.Errorf("%w: mooncake_slowdown_factor must be a positive number, got %v", ErrBadWorkload, w.MooncakeSlowdownFactor)
	}
	w.MooncakeSlowdownFactor = slowdown
	recs, err := readMooncake(w.DatasetPath, w.NumPrompts)
	if err != nil {
		return nil, err
	}
	return &mooncakeDataset{w: w, records: recs}, nil
}

// readMooncake reads the first limit records (limit <= 0: all) of a trace.
func readMooncake(path string, limit int) ([]mooncakeRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWorkload, err)
	}
	defer f.Close()
	bad := func(line int, field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: line %d: %s: %s", ErrBadWorkload, path, line, field, fmt.Sprintf(format, args...))
	}
	var out []mooncakeRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() && (limit <= 0 || len(out) < limit) {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var raw struct {
			Timestamp    *float64 `json:"timestamp"`
			InputLength  *int     `json:"input_length"`
			OutputLength *int     `json:"output_length"`
			HashIDs      []int64  `json:"hash_ids"`
		}
		if err := json.Unmarshal(text, &raw); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return nil, bad(line, te.Field, "want %s, got a JSON %s", te.Type, te.Value)
			}
			return nil, bad(line, "record", "not a JSON object: %v", err)
		}
		r := mooncakeRecord{line: line, hashIDs: raw.HashIDs}
		switch {
		case raw.Timestamp == nil:
			return nil, bad(line, "timestamp", "missing")
		case *raw.Timestamp < 0:
			return nil, bad(line, "timestamp", "%v is negative (want ms since the trace's first request)", *raw.Timestamp)
		case time.Duration(*raw.Timestamp*float64(time.Millisecond)) > maxTraceSpan || math.IsNaN(*raw.Timestamp):
			return nil, bad(line, "timestamp", "%v ms is more than %s after the trace's start (want ms since the first request, not an epoch time)", *raw.Timestamp, maxTraceSpan)
		case raw.InputLength == nil:
			return nil, bad(line, "input_length", "missing")
		case *raw.InputLength < 1:
			return nil, bad(line, "input_length", "must be at least 1, got %d", *raw.InputLength)
		case raw.OutputLength == nil:
			return nil, bad(line, "output_length", "missing")
		case *raw.OutputLength < 1:
			return nil, bad(line, "output_length", "must be at least 1, got %d", *raw.OutputLength)
		}
		for i, h := range raw.HashIDs {
			if h < 0 {
				return nil, bad(line, fmt.Sprintf("hash_ids[%d]", i), "%d is negative", h)
			}
		}
		r.timestamp, r.inputLen, r.outputLen = *raw.Timestamp, *raw.InputLength, *raw.OutputLength
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: line %d: %v", ErrBadWorkload, path, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: the trace holds no records", ErrBadWorkload, path)
	}
	// Replay in arrival order (as bench_serving sorts a trace); the offsets
	// are relative to the earliest request.
	slices.SortStableFunc(out, func(a, b mooncakeRecord) int {
		switch {
		case a.timestamp < b.timestamp:
			return -1
		case a.timestamp > b.timestamp:
			return 1
		}
		return 0
	})
	return out, nil
}

func (d *mooncakeDataset) Timed() bool { return true }

// Prompts returns the trace's records (n is the trace's num_prompts, already applied).
func (d *mooncakeDataset) Prompts(_ int, seed uint64) ([]Prompt, error) {
	vocab := vocabOf(d.w)
	blocks := map[int64][]int{}
	block := func(h int64) []int {
		if b, ok := blocks[h]; ok {
			return b
		}
		b := make([]int, MooncakeBlockTokens)
		randomIDs(newRNG(seed, uint64(h)), b, vocab)
		blocks[h] = b
		return b
	}
	own := newRNG(seed, 0x6a09e667f3bcc909)
	t0 := d.records[0].timestamp
	out := make([]Prompt, len(d.records))
	for i, r := range d.records {
		ids := make([]int, 0, r.inputLen)
		for _, h := range r.hashIDs {
			if len(ids) >= r.inputLen {
				break
			}
			b := block(h)
			ids = append(ids, b[:min(len(b), r.inputLen-len(ids))]...)
		}
		if rest := r.inputLen - len(ids); rest > 0 {
			tail := make([]int, rest)
			randomIDs(own, tail, vocab)
			ids = append(ids, tail...)
		}
		offset := (r.timestamp - t0) * d.w.MooncakeSlowdownFactor
		out[i] = Prompt{InputIDs: ids, OutputLen: r.outputLen, Arrival: time.Duration(offset * float64(time.Millisecond))}
	}
	return out, nil
}
