package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// genParams are the sampling parameters SGLang validates.
type genParams struct {
	MaxNewTokens *int     `json:"max_new_tokens"`
	MinNewTokens int      `json:"min_new_tokens"`
	Temperature  *float64 `json:"temperature"`
	TopP         *float64 `json:"top_p"`
	TopK         *int     `json:"top_k"`
	IgnoreEOS    bool     `json:"ignore_eos"`
}

func (g *genParams) validate(defMax int) (int, error) {
	maxNew := defMax
	if g.MaxNewTokens != nil {
		maxNew = *g.MaxNewTokens
	}
	if g.Temperature != nil && (*g.Temperature < 0 || math.IsNaN(*g.Temperature) || math.IsInf(*g.Temperature, 0)) {
		return 0, fmt.Errorf("temperature must be non-negative, got %s.", pyFloat(*g.Temperature))
	}
	if g.TopP != nil && (*g.TopP <= 0 || *g.TopP > 1) {
		return 0, fmt.Errorf("top_p must be in (0, 1], got %s.", pyFloat(*g.TopP))
	}
	if g.TopK != nil && *g.TopK < 1 && *g.TopK != -1 {
		return 0, fmt.Errorf("top_k must be -1 (disable), or at least 1, got %d.", *g.TopK)
	}
	if maxNew < 0 {
		return 0, fmt.Errorf("max_new_tokens must be at least 0, got %d.", maxNew)
	}
	if g.MinNewTokens < 0 || g.MinNewTokens > maxNew {
		return 0, fmt.Errorf("min_new_tokens must be in [0, max_new_tokens(%d)], got %d.", maxNew, g.MinNewTokens)
	}
	return maxNew, nil
}

// prompts decodes text / input_ids forms into prompts' token ids: a
// string, a list of strings, a list of ids, or a list of id lists (text is
// tokenized by tokenize). batch reports a list form (the response is then a
// list).
func prompts(raw json.RawMessage, isText bool, vocab int) (out [][]int32, batch bool, err error) {
	raw = bytes.TrimSpace(raw)
	if isText {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			return [][]int32{tokenize(one, vocab)}, false, nil
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return nil, false, errors.New("text must be a string or a list of strings")
		}
		for _, t := range many {
			out = append(out, tokenize(t, vocab))
		}
		return out, true, nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		p, err := checkIDs(ids, vocab)
		if err != nil {
			return nil, false, err
		}
		return [][]int32{p}, false, nil
	}
	var lists [][]int64
	if err := json.Unmarshal(raw, &lists); err != nil {
		return nil, false, errors.New("input_ids must be a list of integers or a list of lists of integers")
	}
	for _, l := range lists {
		p, err := checkIDs(l, vocab)
		if err != nil {
			return nil, false, err
		}
		out = append(out, p)
	}
	return out, true, nil
}

// checkIDs validates token ids against the vocabulary and returns them as int32.
func checkIDs(ids []int64, vocab int) ([]int32, error) {
	out := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(vocab) {
			return nil, fmt.Errorf("The input_ids contain an out-of-vocabulary token id %d (vocab size %d).", id, vocab)
		}
		out[i] = int32(id)
	}
	return out, nil
}

// checkLength applies SGLang's context-length checks.
func (s *server) checkLength(in, maxNew int) error {
	ctx := s.plan.Config.ContextLength
	if in == 0 {
		return errors.New("The input is empty.")
	}
	if in >= ctx {
		return fmt.Errorf("The input (%d tokens) is longer than the model's context length (%d tokens).", in, ctx)
	}
	if in+maxNew > ctx {
		return fmt.Errorf("Requested token count exceeds the model's maximum context length of %d tokens. You requested a total of %d tokens: %d tokens from the input messages and %d tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.", ctx, in+maxNew, in, maxNew)
	}
	if in > s.maxInputLen() {
		return fmt.Errorf("The input (%d tokens) is longer than the maximum allowed request input length (%d tokens).", in, s.maxInputLen())
	}
	return nil
}
