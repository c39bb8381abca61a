package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

type completionBody struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	MinTokens     int             `json:"min_tokens"`
	IgnoreEOS     bool            `json:"ignore_eos"`
	Stream        bool            `json:"stream"`
	N             *int            `json:"n"`
	StreamOptions *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
}

func (s *server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	body, ok := decodeRequest[completionBody](s, w, r, openAIError, http.MethodPost)
	if !ok {
		return
	}
	p := bytes.TrimSpace(body.Prompt)
	var toks [][]int32
	var err error
	switch {
	case len(p) == 0 || string(p) == "null" || string(p) == `""` || string(p) == "[]":
		err = errors.New("The prompt cannot be empty.")
	case p[0] == '"':
		toks, _, err = prompts(p, true, s.mdl.Vocab)
	case bytes.HasPrefix(p, []byte(`["`)):
		toks, _, err = prompts(p, true, s.mdl.Vocab)
	default:
		toks, _, err = prompts(p, false, s.mdl.Vocab)
	}
	if err != nil {
		openAIError(w, http.StatusBadRequest, err.Error())
		return
	}
	gp := genParams{MaxNewTokens: body.MaxTokens, MinNewTokens: body.MinTokens, Temperature: body.Temperature,
		TopP: body.TopP, TopK: body.TopK, IgnoreEOS: body.IgnoreEOS}
	maxNew, err := gp.validate(16)
	if err == nil {
		for _, p := range toks {
			if err = s.checkLength(len(p), maxNew); err != nil {
				break
			}
		}
	}
	if err != nil {
		openAIError(w, http.StatusBadRequest, err.Error())
		return
	}
	rids := make([]string, len(toks))
	for i := range rids {
		rids[i] = s.newRID()
	}
	reqs := s.newRequests(toks, rids, maxNew, body.IgnoreEOS, arrival)
	for _, q := range reqs {
		s.submit(q)
	}
	name := body.Model
	if name == "" {
		name = s.servedName()
	}
	created := time.Now().Unix()
	if !body.Stream {
		s.finishCompletion(w, r, reqs, name, created)
		return
	}
	cw := &completionChunks{rid: reqs[0].rid, name: name, created: created, cacheReport: s.sa.bool("enable_cache_report")}
	if o := body.StreamOptions; o != nil {
		cw.includeUsage, cw.continuous = o.IncludeUsage, o.ContinuousUsageStats
	}
	s.stream(w, r, reqs, cw)
}

func (q *request) openAIFinish(n int) string {
	if q.stopByEOS && n == q.outLen {
		return `"stop","matched_stop":2`
	}
	return `"length","matched_stop":null`
}

// usage is the token counts of an OpenAI usage object.
type usage struct {
	prompt, completion, cached int
}

func (u *usage) add(q *request, completion int) {
	u.prompt += q.promptLen
	u.completion += completion
	u.cached += int(q.cached.Load())
}

// appendUsage writes a usage object. prompt_tokens_details carries the
// prefix-cache hits only with --enable-cache-report and a non-zero count,
// as SGLang's UsageProcessor does.
func appendUsage(b []byte, u usage, cacheReport bool) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt+u.completion), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.completion), 10)
	if !cacheReport || u.cached == 0 {
		return append(b, `,"prompt_tokens_details":null}`...)
	}
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(u.cached), 10)
	return append(b, "}}"...)
}

func completionHead(b []byte, id, name string, created int64) []byte {
	b = append(b, `{"id":"`...)
	b = appendJSONSafe(b, id)
	b = append(b, `","object":"text_completion","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":"`...)
	b = appendJSONSafe(b, name)
	return append(b, `","choices":[`...)
}

func (s *server) finishCompletion(w http.ResponseWriter, r *http.Request, reqs []*request, name string, created int64) {
	b := completionHead(nil, reqs[0].rid, name, created)
	var u usage
	for i, q := range reqs {
		n, _, err := s.wait(r.Context(), q, 0, 0)
		if err != nil {
			for _, o := range reqs[i:] {
				s.cancel(o)
			}
			if errors.Is(err, errStopping) {
				openAIError(w, http.StatusServiceUnavailable, "The server is shutting down.")
			}
			return
		}
		var t tokens
		t.extend(q, n)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"text":"`...)
		b = append(b, t.text...)
		b = append(b, `","logprobs":null,"finish_reason":`...)
		b = append(b, q.openAIFinish(n)...)
		b = append(b, '}')
		u.add(q, n)
		s.record(q, time.Unix(0, q.finish.Load()))
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, u, s.sa.bool("enable_cache_report"))
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// completionChunks writes /v1/completions' SSE chunks: one text_completion
// object per chunk with the text delta, then (include_usage) a usage chunk
// with the totals of every choice.
type completionChunks struct {
	rid, name                             string
	created                               int64
	includeUsage, continuous, cacheReport bool

	mu    sync.Mutex // the choices of a batch finish concurrently
	total usage
}

func (c *completionChunks) chunk(b []byte, q *request, t *tokens, n int, done bool) []byte {
	t.extend(q, n)
	_, text := t.delta()
	b = completionHead(b, q.rid, c.name, c.created)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(q.index), 10)
	b = append(b, `,"text":"`...)
	b = append(b, text...)
	b = append(b, `","logprobs":null,"finish_reason":`...)
	if done {
		b = append(b, q.openAIFinish(n)...)
		c.mu.Lock()
		c.total.add(q, n)
		c.mu.Unlock()
	} else {
		b = append(b, `null,"matched_stop":null`...)
	}
	b = append(b, `}],"usage":`...)
	if c.continuous {
		b = appendUsage(b, usage{prompt: q.promptLen, completion: n, cached: int(q.cached.Load())}, c.cacheReport)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

func (c *completionChunks) tail(b []byte) []byte {
	if !c.includeUsage {
		return b
	}
	b = completionHead(b, c.rid, c.name, c.created)
	b = append(b, `],"usage":`...)
	c.mu.Lock()
	b = appendUsage(b, c.total, c.cacheReport)
	c.mu.Unlock()
	return append(b, '}')
}
