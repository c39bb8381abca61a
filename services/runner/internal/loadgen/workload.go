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
	"github.com/sgtune/sgtune/pkg/study"
)

// Backends and datasets of events.Workload.
const (
	BackendSGLang       = "sglang"
	BackendOpenAI       = "openai"
	DatasetRandomID     = study.DatasetRandomIDs
	DatasetPrompts      = study.DatasetPrompts
	DatasetMooncake     = study.DatasetMooncake
	DatasetSharedPrefix = study.DatasetSharedPrefix
	DatasetShareGPT     = study.DatasetShareGPT
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

// buildRequests encodes prompts as requests of w's backend. Arrival
// offsets are the prompts' own for a timed dataset (a trace), else Poisson
// at w.RequestRate drawn from seed, else 0 (all at once, or a closed loop).
// Warm-up requests ask for at most warmupMaxTokens and arrive at once.
func buildRequests(w events.Workload, model string, prompts []Prompt, timed bool, seed uint64, warmup bool) ([]request, error) {
	backend := w.Backend
	if backend == "" {
		backend = BackendSGLang
	}
	if backend != BackendSGLang && backend != BackendOpenAI {
		return nil, fmt.Errorf("%w: backend %q (want sglang or openai)", ErrBadWorkload, backend)
	}
	arrivals := newRNG(seed, 0x5851f42d4c957f2d)
	out := make([]request, len(prompts))
	var at time.Duration
	var buf bytes.Buffer
	for i := range out {
		p := &prompts[i]
		r := &out[i]
		r.index = i
		r.openai = backend == BackendOpenAI
		r.path = "/generate"
		if r.openai {
			r.path = "/v1/completions"
		}
		r.inputLen = len(p.InputIDs) // 0 for text: only the server knows
		r.outputLen = max(p.OutputLen, 1)
		switch {
		case warmup:
			r.outputLen = min(r.outputLen, warmupMaxTokens)
		case timed:
			r.arrival = p.Arrival
		case w.RequestRate > 0:
			at += time.Duration(arrivals.ExpFloat64() / w.RequestRate * float64(time.Second))
			r.arrival = at
		}
		buf.Reset()
		writeBody(&buf, r, w.IgnoreEOS, model, p.InputIDs, p.Text)
		r.body = append([]byte(nil), buf.Bytes()...)
	}
	return out, nil
}

// warmupPrompts are n prompts that touch the measured requests' code paths
// without warming the server's prefix cache for them: random ids of the
// measured prompts' lengths (a shared prefix or a trace's blocks stay cold),
// or, for a text dataset, other draws from it.
func warmupPrompts(ds Dataset, measured []Prompt, n int, seed uint64, vocab int) ([]Prompt, error) {
	if n <= 0 || len(measured) == 0 {
		return nil, nil
	}
	if measured[0].InputIDs == nil {
		return ds.Prompts(n, seed)
	}
	rng := newRNG(seed, 0x510e527fade682d1)
	out := make([]Prompt, n)
	for i := range out {
		ids := make([]int, len(measured[i%len(measured)].InputIDs))
		randomIDs(rng, ids, vocab)
		out[i] = Prompt{InputIDs: ids, OutputLen: measured[i%len(measured)].OutputLen}
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
