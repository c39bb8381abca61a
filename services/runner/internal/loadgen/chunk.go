package loadgen

import (
	"bytes"
	"encoding/json"
)

// chunkInfo is what the load generator needs from one streamed JSON chunk.
// Fields are found by scanning for their keys instead of decoding: SGLang's
// native chunks carry the whole (cumulative) text and output ids so far, and
// decoding each of them would make the client, not the server, the
// bottleneck at hundreds of streams. A key in quotes followed by ':' cannot
// occur inside a JSON string value (its quotes would be escaped), so the scan
// finds only real keys.
type chunkInfo struct {
	completionTokens int  // meta_info.completion_tokens or usage.completion_tokens; -1 if absent
	promptTokens     int  // prompt_tokens; -1 if absent
	cachedTokens     int  // meta_info.cached_tokens or usage.prompt_tokens_details.cached_tokens; -1 if absent
	hasText          bool // a non-empty "text" (or "content") value
	finished         bool // a non-null finish_reason
	errMsg           string
}

var (
	keyCompletion = []byte(`"completion_tokens"`)
	keyPrompt     = []byte(`"prompt_tokens"`)
	keyCached     = []byte(`"cached_tokens"`)
	keyText       = []byte(`"text"`)
	keyContent    = []byte(`"content"`)
	keyFinish     = []byte(`"finish_reason"`)
	keyError      = []byte(`"error"`)
	abortType     = []byte(`"abort"`)
)

func scanChunk(data []byte) chunkInfo {
	ci := chunkInfo{completionTokens: scanInt(data, keyCompletion), promptTokens: scanInt(data, keyPrompt),
		cachedTokens: scanInt(data, keyCached)}
	if v := valueAfter(data, keyText); len(v) >= 2 && v[0] == '"' && v[1] != '"' {
		ci.hasText = true
	} else if v := valueAfter(data, keyContent); len(v) >= 2 && v[0] == '"' && v[1] != '"' {
		ci.hasText = true
	}
	if v := valueAfter(data, keyFinish); len(v) > 0 && v[0] != 'n' {
		ci.finished = true
	}
	if valueAfter(data, keyError) != nil || (ci.finished && bytes.Contains(data, abortType)) {
		ci.errMsg = decodeError(data)
	}
	return ci
}

// decodeError fully decodes a chunk that looks like an error (rare) to find
// the message: a top-level {"error": ...}, a native finish_reason of type
// "abort", or an OpenAI choice whose finish_reason is "abort" (SGLang ends an
// aborted request's stream that way: the request failed, whatever it sent).
func decodeError(data []byte) string {
	var v struct {
		Error    json.RawMessage `json:"error"`
		MetaInfo struct {
			FinishReason json.RawMessage `json:"finish_reason"`
		} `json:"meta_info"`
		Choices []struct {
			FinishReason json.RawMessage `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return ""
	}
	if len(v.Error) > 0 && string(v.Error) != "null" {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &e) == nil && e.Message != "" {
			return e.Message
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
		return string(v.Error)
	}
	var native struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	if json.Unmarshal(v.MetaInfo.FinishReason, &native) == nil && native.Type == "abort" {
		if native.Message != "" {
			return "aborted: " + native.Message
		}
		return "aborted"
	}
	for _, c := range v.Choices {
		var reason string
		if json.Unmarshal(c.FinishReason, &reason) == nil && reason == "abort" {
			return "aborted (finish_reason abort)"
		}
	}
	return ""
}

// valueAfter returns data from the first byte of the value of key (after the
// colon and any spaces), or nil when the key is absent.
func valueAfter(data, key []byte) []byte {
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return nil
		}
		rest := skipSpace(data[i+len(key):])
		if len(rest) > 0 && rest[0] == ':' {
			return skipSpace(rest[1:])
		}
		data = data[i+len(key):]
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// scanInt returns the non-negative integer value of key, or -1.
func scanInt(data, key []byte) int {
	v := valueAfter(data, key)
	n, digits := 0, 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
		if digits > 12 {
			return -1
		}
	}
	if digits == 0 {
		return -1
	}
	return n
}
