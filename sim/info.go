package sim

import (
	"io"
	"math"
	"net/http"
	"time"

	"github.com/sgtune/sgtune/sim/model"
)

func (s *server) ready() bool {
	return s.state.Load() == stateReady && len(s.reps()) > 0
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method Not Allowed"})
		return
	}
	if s.env.fault == FaultNeverHealthy || !s.ready() || s.hung.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *server) servedName() string {
	if n := s.sa.str("served_model_name"); n != "" {
		return n
	}
	return s.sa.str("model_path")
}

func (s *server) handleModelInfo(w http.ResponseWriter, _ *http.Request) {
	tok := s.sa.str("tokenizer_path")
	if tok == "" {
		tok = s.sa.str("model_path")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path": s.sa.str("model_path"), "tokenizer_path": tok, "is_generation": true,
		"preferred_sampling_params": nil, "weight_version": "default",
		"has_image_understanding": false, "has_audio_understanding": false,
		"model_type": s.mdl.ModelType, "architectures": []string{s.mdl.Architecture},
	})
}

func (s *server) handleModels(w http.ResponseWriter, _ *http.Request) {
	ctx := s.mdl.ContextLength
	if s.plan != nil {
		ctx = s.plan.Config.ContextLength
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": s.servedName(), "object": "model", "created": s.startAt.Unix(), "owned_by": "sglang",
		"root": s.sa.str("model_path"), "parent": nil, "max_model_len": ctx,
	}}})
}

// handleFlushCache empties every replica's prefix cache, as SGLang's
// /flush_cache does: only when nothing is running or waiting (400 otherwise,
// with the same text).
func (s *server) handleFlushCache(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	for _, rep := range s.reps() {
		done := make(chan bool, 1)
		select {
		case rep.flush <- done:
			if !<-done {
				code = http.StatusBadRequest
			}
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-time.After(time.Second): // a hung scheduler
			code = http.StatusBadRequest
		}
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n")
}

// effectiveArgs is the flat ServerArgs dict after SGLang's adjustments.
func (s *server) effectiveArgs() map[string]any {
	out := map[string]any{}
	for _, sp := range s.sa.table.specs {
		if v, ok := s.sa.values[sp.name]; ok {
			out[sp.name] = v
		} else {
			out[sp.name] = sp.def
		}
	}
	mp := s.sa.str("model_path")
	if out["tokenizer_path"] == nil {
		out["tokenizer_path"] = mp
	}
	if out["served_model_name"] == nil {
		out["served_model_name"] = mp
	}
	if out["random_seed"] == nil {
		out["random_seed"] = int(s.env.seed % (1 << 30))
	}
	p := s.plan
	if p == nil {
		return out
	}
	c := p.Config
	set := func(k string, v any) { out[k] = v }
	set("tp_size", c.TP)
	set("dp_size", c.DP)
	set("pp_size", c.PP)
	set("ep_size", c.EPSize)
	set("attention_backend", c.AttentionBackend)
	// Equal prefill and decode backends fold into attention_backend.
	set("prefill_attention_backend", noneIfEmpty(c.PrefillAttentionBackend))
	set("decode_attention_backend", noneIfEmpty(c.DecodeAttentionBackend))
	set("disable_radix_cache", c.DisableRadixCache)
	set("chunked_prefill_size", c.ChunkedPrefillSize)
	set("max_prefill_tokens", c.MaxPrefillTokens)
	set("page_size", c.PageSize)
	set("cuda_graph_max_bs", c.CudaGraphMaxBS)
	if p.CudaGraph {
		set("cuda_graph_bs", p.CaptureBS)
	}
	set("disable_cuda_graph", c.DisableCudaGraph)
	set("enable_mixed_chunk", c.EnableMixedChunk)
	set("disable_overlap_schedule", c.DisableOverlapSchedule)
	set("enable_torch_compile", c.EnableTorchCompile)
	set("torch_compile_max_bs", c.TorchCompileMaxBS)
	set("num_continuous_decode_steps", c.NumContinuousDecodeSteps)
	set("enable_two_batch_overlap", c.EnableTwoBatchOverlap)
	set("moe_a2a_backend", c.MoEA2ABackend)
	set("tokenizer_worker_num", c.TokenizerWorkerNum)
	set("sampling_backend", c.SamplingBackend)
	set("schedule_policy", c.SchedulePolicy)
	set("schedule_conservativeness", c.ScheduleConservativeness)
	set("mem_fraction_static", c.MemFractionStatic)
	set("max_running_requests", p.MaxRunningRequests)
	set("enable_dp_attention", c.EnableDPAttention)
	set("context_length", c.ContextLength)
	set("stream_interval", c.StreamInterval)
	set("kv_cache_dtype", c.KVCacheDtype)
	set("dtype", c.Dtype)
	return out
}

// noneIfEmpty is Python's None for an unset string.
func noneIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *server) handleServerInfo(w http.ResponseWriter, _ *http.Request) {
	out := s.effectiveArgs()
	if p := s.plan; p != nil {
		out["max_total_num_tokens"] = p.MaxTotalTokens
		out["max_req_input_len"] = s.maxInputLen()
		var states []any
		for _, rep := range s.reps() {
			states = append(states, map[string]any{
				"last_gen_throughput":    math.Float64frombits(rep.genTput.Load()),
				"avg_spec_accept_length": nil,
				"memory_usage": map[string]any{"weight": round2(p.WeightGB), "kvcache": round2(p.KVPoolGB),
					"token_capacity": p.MaxTotalTokens, "graph": round2(p.GraphGB)},
				"waiting_queue_size": rep.queued.Load(),
				"running_batch_size": rep.running.Load(),
				"dp_rank":            rep.idx,
			})
		}
		if states == nil {
			states = []any{}
		}
		out["internal_states"] = states
	}
	out["version"] = Version
	writeJSON(w, http.StatusOK, out)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (s *server) maxInputLen() int {
	p := s.plan
	return min(p.Config.ContextLength-1, p.MaxTotalTokens-1)
}

// SimInfo is GET /sim/info: what the simulator pretends to be.
type SimInfo struct {
	GPU            model.Hardware       `json:"gpu"`
	Model          model.Model          `json:"model"`
	StartupSeconds float64              `json:"startup_seconds"`
	Startup        []model.StartupPhase `json:"startup_phases"`
	TimeScale      float64              `json:"time_scale"`
	Noise          float64              `json:"noise"`
	LaunchFactor   float64              `json:"launch_factor"`
	Fault          string               `json:"fault,omitempty"`
	Notes          []string             `json:"notes,omitempty"`
	Replicas       int                  `json:"replicas"`
	MaxTotalTokens int                  `json:"max_total_num_tokens"`
	Requests       int64                `json:"requests"`
}

func (s *server) handleSimInfo(w http.ResponseWriter, _ *http.Request) {
	info := SimInfo{GPU: s.env.hw, Model: s.mdl, TimeScale: s.env.timeScale, Noise: s.env.noise,
		LaunchFactor: s.noise0, Fault: s.env.fault, Requests: s.nreq.Load()}
	if p := s.plan; p != nil {
		info.StartupSeconds = p.StartupSeconds()
		info.Startup = p.StartupPhases()
		info.Notes = p.Notes
		info.Replicas = p.Replicas
		info.MaxTotalTokens = p.MaxTotalTokens
	}
	writeJSON(w, http.StatusOK, info)
}
