package sim

import (
	"encoding/json"
	"testing"
	"time"
)

// generateEvent is the part of a /generate chunk the stream tests read.
type generateEvent struct {
	OutputIDs []int `json:"output_ids"`
	Index     *int  `json:"index"`
	Meta      struct {
		FinishReason     json.RawMessage `json:"finish_reason"`
		PromptTokens     int             `json:"prompt_tokens"`
		CompletionTokens int             `json:"completion_tokens"`
		CachedTokens     *int            `json:"cached_tokens"`
	} `json:"meta_info"`
}

// TestStream_chunkWriters drives the one stream loop through both endpoints'
// chunk writers: batches (interleaved choices with their index), deltas
// (--stream-output and /v1/completions) that add up to the whole output, and
// usage chunks whose totals cover every choice.
func TestStream_chunkWriters(t *testing.T) {
	ts := startRun(t, nil, "--stream-output")
	ts.waitHealthy(t, 5*time.Second)

	t.Run("generate batch, incremental", func(t *testing.T) {
		resp := post(t, ts.url+"/generate", `{"input_ids":[[1,2,3],[4,5,6,7,8]],"sampling_params":{"max_new_tokens":6,"ignore_eos":true},"stream":true}`)
		events := sseEvents(t, resp)
		if len(events) == 0 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("events %v", events)
		}
		ids := map[int]int{}
		finished := map[int]bool{}
		for _, ev := range events[:len(events)-1] {
			var c generateEvent
			if err := json.Unmarshal([]byte(ev), &c); err != nil || c.Index == nil {
				t.Fatalf("chunk %s: %v", ev, err)
			}
			i := *c.Index
			if finished[i] {
				t.Fatalf("choice %d has a chunk after its last: %s", i, ev)
			}
			ids[i] += len(c.OutputIDs)
			if c.Meta.CompletionTokens != ids[i] {
				t.Fatalf("choice %d: deltas add to %d tokens, completion_tokens %d", i, ids[i], c.Meta.CompletionTokens)
			}
			if want := []int{3, 5}[i]; c.Meta.PromptTokens != want {
				t.Fatalf("choice %d prompt_tokens %d, want %d", i, c.Meta.PromptTokens, want)
			}
			finished[i] = string(c.Meta.FinishReason) != "null"
		}
		if ids[0] != 6 || ids[1] != 6 || !finished[0] || !finished[1] {
			t.Fatalf("tokens %v finished %v", ids, finished)
		}
	})

	t.Run("completions batch, continuous usage", func(t *testing.T) {
		resp := post(t, ts.url+"/v1/completions", `{"prompt":[[1,2,3],[4,5]],"max_tokens":5,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`)
		events := sseEvents(t, resp)
		if len(events) < 3 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("events %v", events)
		}
		type usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
		var c struct {
			Choices []struct {
				Index        int     `json:"index"`
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		last := map[int]int{}
		for _, ev := range events[:len(events)-2] {
			if err := json.Unmarshal([]byte(ev), &c); err != nil || len(c.Choices) != 1 || c.Usage == nil {
				t.Fatalf("delta %s: %v", ev, err)
			}
			ch := c.Choices[0]
			if c.Usage.CompletionTokens <= last[ch.Index] || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
				t.Fatalf("continuous usage of choice %d not growing: %s", ch.Index, ev)
			}
			last[ch.Index] = c.Usage.CompletionTokens
		}
		if last[0] != 5 || last[1] != 5 {
			t.Fatalf("choices ended at %v tokens, want 5 each", last)
		}
		c.Usage = nil
		if err := json.Unmarshal([]byte(events[len(events)-2]), &c); err != nil || len(c.Choices) != 0 || c.Usage == nil {
			t.Fatalf("usage chunk %s: %v", events[len(events)-2], err)
		}
		if *c.Usage != (usage{PromptTokens: 5, CompletionTokens: 10, TotalTokens: 15}) {
			t.Fatalf("usage totals %+v, want 5 + 10", *c.Usage)
		}
	})
}
