package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
)

// Backends and datasets of events.Workload.
const (
	BackendSGLang   = "sglang"
	BackendOpenAI   = "openai"
	DatasetRandomID = "random-ids"
	DatasetPrompts  = "prompts"
)

// DefaultVocabSize bounds random token ids when the workload sets none.
const DefaultVocabSize = 32000

// warmupMaxTokens caps warm-up outputs: they only need to touch every code path.
const warmupMaxTokens = 16

// request is one prepared request: its body is encoded before the clock starts.
type request struct {
	path      string
	body      []byte
	inputLen  int // tokens sent (random ids), or 0 when only the server knows (prompts)
	outputLen int // max new tokens requested
	arrival   time.Duration
	openai    bool
	rid       string // SGLang request id sent with the request, if any
	index     int    // position among the requests of its run
	wire      []byte // the whole HTTP request, encoded before the clock starts
}

// setRequestIDs adds "rid": prefix+index to native requests' bodies (the
// body ends with '}': the field is spliced in before it).
func setRequestIDs(reqs []request, prefix string) {
	for i := range reqs {
		r := &reqs[i]
		if r.openai || len(r.body) == 0 || r.body[len(r.body)-1] != '}' {
			continue
		}
		r.rid = prefix + strconv.Itoa(i)
		q, _ := json.Marshal(r.rid)
		body := make([]byte, 0, len(r.body)+len(q)+8)
		body = append(body, r.body[:len(r.body)-1]...)
		body = append(body, `,"rid":`...)
		body = append(body, q...)
		r.body = append(body, '}')
	}
}

// LengthRange returns the inclusive range bench_serving draws a length from:
// [max(int(L*ratio), 1), L].
// A length below 1 is treated as 1.
func LengthRange(l int, ratio float64) (lo, hi int) {
	l = max(l, 1)
	return min(max(int(float64(l)*ratio), 1), l), l
}

func drawLen(rng *rand.Rand, l int, ratio float64) int {
	lo, hi := LengthRange(l, ratio)
	return lo + rng.IntN(hi-lo+1)
}

// ReadPrompts reads a prompt file: one prompt a line, blank lines skipped.
func ReadPrompts(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWorkload, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrBadWorkload, path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s holds no prompts", ErrBadWorkload, path)
	}
	return out, nil
}

// buildRequests prepares n requests from a seeded generator; warm-up
// requests use their own seed so the measured prompts do not depend on how
// many warm-ups ran (and are not prefix-cached by them).
func buildRequests(w events.Workload, model string, prompts []string, n int, seed uint64, warmup bool) ([]request, error) {
	backend := w.Backend
	if backend == "" {
		backend = BackendSGLang
	}
	dataset := w.Dataset
	if dataset == "" {
		dataset = DatasetRandomID
	}
	if backend != BackendSGLang && backend != BackendOpenAI {
		return nil, fmt.Errorf("%w: backend %q (want sglang or openai)", ErrBadWorkload, backend)
	}
	if dataset != DatasetRandomID && dataset != DatasetPrompts {
		return nil, fmt.Errorf("%w: dataset %q (want random-ids or prompts)", ErrBadWorkload, dataset)
	}
	if dataset == DatasetPrompts && len(prompts) == 0 {
		return nil, fmt.Errorf("%w: dataset prompts without prompts", ErrBadWorkload)
	}
	vocab := w.VocabSize
	if vocab <= 1 {
		vocab = DefaultVocabSize
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	arrivals := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	out := make([]request, n)
	var at time.Duration
	var buf bytes.Buffer
	for i := range out {
		r := &out[i]
		r.index = i
		r.openai = backend == BackendOpenAI
		r.path = "/generate"
		if r.openai {
			r.path = "/v1/completions"
		}
		var ids []int
		var text string
		if dataset == DatasetRandomID {
			r.inputLen = drawLen(rng, w.RandomInputLen, w.RandomRangeRatio)
			ids = make([]int, r.inputLen)
			for j := range ids {
				ids[j] = 1 + rng.IntN(vocab-1)
			}
		} else {
			text = prompts[rng.IntN(len(prompts))]
		}
		r.outputLen = drawLen(rng, w.RandomOutputLen, w.RandomRangeRatio)
		if warmup {
			r.outputLen = min(r.outputLen, warmupMaxTokens)
		}
		if w.RequestRate > 0 && !warmup {
			at += time.Duration(arrivals.ExpFloat64() / w.RequestRate * float64(time.Second))
			r.arrival = at
		}
		buf.Reset()
		writeBody(&buf, r, w.IgnoreEOS, model, ids, text)
		r.body = append([]byte(nil), buf.Bytes()...)
	}
	return out, nil
}

// writeBody encodes a request body by hand: token-id lists are long and
// encoding/json would box every id.
func writeBody(buf *bytes.Buffer, r *request, ignoreEOS bool, model string, ids []int, text string) {
	writeInput := func(key string) {
		buf.WriteString(`"` + key + `":`)
		if ids == nil {
			q, _ := json.Marshal(text)
			buf.Write(q)
			return
		}
		buf.WriteByte('[')
		var num [20]byte
		for j, id := range ids {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(strconv.AppendInt(num[:0], int64(id), 10))
		}
		buf.WriteByte(']')
	}
	eos := strconv.FormatBool(ignoreEOS)
	out := strconv.Itoa(r.outputLen)
	if r.openai {
		m, _ := json.Marshal(model)
		buf.WriteString(`{"model":`)
		buf.Write(m)
		buf.WriteByte(',')
		writeInput("prompt")
		buf.WriteString(`,"max_tokens":` + out + `,"temperature":0,"ignore_eos":` + eos +
			`,"stream":true,"stream_options":{"include_usage":true}}`)
		return
	}
	buf.WriteByte('{')
	if ids == nil {
		writeInput("text")
	} else {
		writeInput("input_ids")
	}
	buf.WriteString(`,"sampling_params":{"max_new_tokens":` + out + `,"temperature":0,"ignore_eos":` + eos + `},"stream":true}`)
}
