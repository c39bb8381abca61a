package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

type generateBody struct {
	Text           json.RawMessage `json:"text"`
	InputIDs       json.RawMessage `json:"input_ids"`
	InputEmbeds    json.RawMessage `json:"input_embeds"`
	SamplingParams json.RawMessage `json:"sampling_params"`
	Stream         bool            `json:"stream"`
	RID            json.RawMessage `json:"rid"`
}

func (s *server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now()
	body, ok := decodeRequest[generateBody](s, w, r, nativeError, http.MethodPost, http.MethodPut)
	if !ok {
		return
	}
	isNull := func(m json.RawMessage) bool { return len(m) == 0 || string(bytes.TrimSpace(m)) == "null" }
	var toks [][]int32
	var batch bool
	var err error
	switch {
	case !isNull(body.Text) && !isNull(body.InputIDs):
		err = errors.New("Either text or input_ids should be provided, not both.")
	case !isNull(body.Text):
		toks, batch, err = prompts(body.Text, true, s.mdl.Vocab)
	case !isNull(body.InputIDs):
		toks, batch, err = prompts(body.InputIDs, false, s.mdl.Vocab)
	case !isNull(body.InputEmbeds):
		err = errors.New("input_embeds is not supported by this model.")
	default:
		err = errors.New("Either text, input_ids or input_embeds should be provided.")
	}
	if err != nil {
		nativeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var sp genParams
	if !isNull(body.SamplingParams) {
		if bytes.HasPrefix(bytes.TrimSpace(body.SamplingParams), []byte("[")) {
			var list []genParams
			if err := json.Unmarshal(body.SamplingParams, &list); err != nil || len(list) == 0 {
				nativeError(w, http.StatusBadRequest, "sampling_params must be an object or a list of objects")
				return
			}
			sp = list[0]
		} else if err := json.Unmarshal(body.SamplingParams, &sp); err != nil {
			nativeError(w, http.StatusBadRequest, "Invalid sampling_params: "+err.Error())
			return
		}
	}
	maxNew, err := sp.validate(128)
	if err == nil {
		for _, p := range toks {
			if err = s.checkLength(len(p), maxNew); err != nil {
				break
			}
		}
	}
	if err != nil {
		nativeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rids := make([]string, len(toks))
	var one string
	var many []string
	switch {
	case json.Unmarshal(body.RID, &one) == nil && one != "":
		rids[0] = one
		for i := 1; i < len(rids); i++ {
			rids[i] = fmt.Sprintf("%s_%d", one, i)
		}
	case json.Unmarshal(body.RID, &many) == nil && len(many) == len(toks):
		copy(rids, many)
	}
	for i := range rids {
		if rids[i] == "" {
			rids[i] = s.newRID()
		}
	}
	reqs := s.newRequests(toks, rids, maxNew, sp.IgnoreEOS, arrival)
	for _, q := range reqs {
		s.submit(q)
	}
	if body.Stream {
		s.stream(w, r, reqs, &generateChunks{incremental: s.incremental(), batch: batch})
		return
	}
	s.finishGenerate(w, r, reqs, batch)
}

func (s *server) incremental() bool { return s.sa.bool("stream_output") }

// generateChunk appends one /generate JSON object (no SSE framing).
func generateChunk(b []byte, q *request, t *tokens, n int, done bool, incremental, batch bool) []byte {
	t.extend(q, n)
	ids, text := t.ids, t.text
	if incremental {
		ids, text = t.delta()
	}
	b = append(b, `{"text":"`...)
	b = append(b, text...)
	b = append(b, `","output_ids":[`...)
	b = append(b, ids...)
	b = append(b, `],"meta_info":{"id":"`...)
	b = appendJSONSafe(b, q.rid)
	b = append(b, `","finish_reason":`...)
	if done {
		b = q.finishReasonJSON(b, n)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(q.promptLen), 10)
	b = append(b, `,"weight_version":"default","completion_tokens":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"cached_tokens":`...)
	b = strconv.AppendInt(b, q.cached.Load(), 10)
	if done {
		b = append(b, `,"e2e_latency":`...)
		b = strconv.AppendFloat(b, time.Since(q.arrival).Seconds(), 'f', 6, 64)
	}
	b = append(b, '}')
	if batch {
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(q.index), 10)
	}
	return append(b, '}')
}

func (s *server) finishGenerate(w http.ResponseWriter, r *http.Request, reqs []*request, batch bool) {
	var out []byte
	if batch {
		out = append(out, '[')
	}
	for i, q := range reqs {
		n, _, err := s.wait(r.Context(), q, 0, 0)
		if err != nil {
			for _, o := range reqs[i:] {
				s.cancel(o)
			}
			if errors.Is(err, errStopping) {
				nativeError(w, http.StatusServiceUnavailable, "The server is shutting down.")
			}
			return
		}
		if i > 0 {
			out = append(out, ',')
		}
		var t tokens
		out = generateChunk(out, q, &t, n, true, false, false)
		s.record(q, time.Unix(0, q.finish.Load()))
	}
	if batch {
		out = append(out, ']')
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// generateChunks writes /generate's SSE chunks: the response object of the
// request so far, cumulative unless --stream-output, with "index" in a batch.
type generateChunks struct {
	incremental, batch bool
}

func (g *generateChunks) chunk(b []byte, q *request, t *tokens, n int, done bool) []byte {
	return generateChunk(b, q, t, n, done, g.incremental, g.batch)
}

func (g *generateChunks) tail(b []byte) []byte { return b }
