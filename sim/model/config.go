package model

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Config holds a server's launch arguments, named after SGLang's ServerArgs
// fields. Zero values mean "not given" (SGLang's None) and are resolved by
// NewPlan exactly as SGLang resolves them; NewPlan's Plan.Config holds the
// effective values after SGLang's defaults and silent adjustments.
type Config struct {
	// TP, DP and PP are tp_size, dp_size and pp_size; 0 means 1, negative is invalid.
	TP, DP, PP int
	// EPSize is ep_size; 0 means 1 (or tp_size when an all-to-all MoE backend is set).
	EPSize int
	// AttentionBackend, PrefillAttentionBackend and DecodeAttentionBackend are
	// the three backend flags; "" means None (auto / inherit).
	AttentionBackend        string
	PrefillAttentionBackend string
	DecodeAttentionBackend  string
	// ChunkedPrefillSize: 0 = auto from GPU memory; negative = chunked prefill disabled.
	ChunkedPrefillSize int
	// MaxPrefillTokens is the token budget of one prefill batch; 0 means 16384.
	MaxPrefillTokens int
	// PageSize is tokens per KV page; 0 means auto (1 on CUDA, or forced by the backend).
	PageSize int
	// CudaGraphMaxBS is the largest captured decode batch; 0 means auto.
	CudaGraphMaxBS int
	// CudaGraphBS is an explicit capture list (--cuda-graph-bs); nil means derived.
	CudaGraphBS      []int
	DisableCudaGraph bool
	// EnableMixedChunk mixes running decodes into prefill-chunk batches.
	EnableMixedChunk bool
	// DisableOverlapSchedule turns the overlap (zero-overhead) scheduler off.
	DisableOverlapSchedule bool
	EnableTorchCompile     bool
	// TorchCompileMaxBS: 0 means 32.
	TorchCompileMaxBS int
	// NumContinuousDecodeSteps: 0 means 1.
	NumContinuousDecodeSteps int
	EnableTwoBatchOverlap    bool
	// MoEA2ABackend is --moe-a2a-backend; "" or "none" means none.
	MoEA2ABackend string
	// TokenizerWorkerNum: 0 means 1.
	TokenizerWorkerNum int
	// SamplingBackend: "" means flashinfer (SGLang's default when flashinfer is installed).
	SamplingBackend string
	// SchedulePolicy: "" means fcfs.
	SchedulePolicy string
	// ScheduleConservativeness: 0 means 1.0.
	ScheduleConservativeness float64
	// MemFractionStatic: 0 means auto (A.3).
	MemFractionStatic float64
	// MaxRunningRequests and MaxTotalTokens: 0 means derived from the KV pool.
	MaxRunningRequests int
	MaxTotalTokens     int
	EnableDPAttention  bool
	DisableRadixCache  bool
	// StreamInterval: 0 means 1.
	StreamInterval int
	// ContextLength: 0 means the model's.
	ContextLength int
	// KVCacheDtype: "" or "auto" means the model dtype; "fp8_e5m2", "fp8_e4m3", "bf16", ...
	KVCacheDtype string
	// Dtype: "" or "auto" means bfloat16.
	Dtype string
	// Quantization: "" means none; fp8-style methods store one byte per weight.
	Quantization string
	// HasAPIKey reports that --api-key was given.
	HasAPIKey bool
	// EnableDeterministicInference mirrors --enable-deterministic-inference.
	EnableDeterministicInference bool
	// SkipServerWarmup skips the warmup request at startup.
	SkipServerWarmup bool
}

// AttentionBackends is the release (v0.5.x) choice list of the three
// attention-backend flags (sglang.md A.1 #2).
var AttentionBackends = []string{"triton", "torch_native", "flex_attention", "nsa", "cutlass_mla", "fa3", "fa4",
	"flashinfer", "flashmla", "trtllm_mla", "trtllm_mha", "dual_chunk_flash_attn", "aiter", "wave", "intel_amx",
	"ascend", "intel_xpu"}

// SchedulePolicies is the release choice list of --schedule-policy.
var SchedulePolicies = []string{"lpm", "random", "fcfs", "dfs-weight", "lof"}

// SamplingBackends is the release choice list of --sampling-backend.
var SamplingBackends = []string{"flashinfer", "pytorch"}

// Plan is a config resolved against a GPU and a model: the effective server
// args plus everything derived from them (memory split, KV capacity, CUDA
// graph sizes). Its methods are the per-step performance functions.
type Plan struct {
	// Config holds the effective values (every zero "None" resolved).
	Config Config
	HW     Hardware
	Model  Model
	// GPUsNeeded is tp*pp*dp, or tp*pp with DP attention.
	GPUsNeeded int
	// Replicas is the number of independent schedulers (dp without DP attention, else 1).
	Replicas int
	// AttnDP is the number of attention-DP groups inside one replica (dp with DP attention, else 1).
	AttnDP int
	// Prefill and decode backends after inheritance and silent switches.
	PrefillBackend, DecodeBackend string
	// CudaGraph reports whether decode runs as CUDA graphs; CaptureBS lists the captured sizes.
	CudaGraph bool
	CaptureBS []int
	// WeightGB is the weight memory per GPU (GiB); KVPoolGB the KV pool per GPU.
	WeightGB, KVPoolGB float64
	// KVBytesPerToken is the KV-cache bytes one token takes on one GPU (all its layers).
	KVBytesPerToken float64
	// MaxTotalTokens is the KV capacity of one replica in tokens (SGLang's max_total_num_tokens).
	MaxTotalTokens int
	// MaxRunningRequests is the request-pool size of one replica.
	MaxRunningRequests int
	// FreeGB is the memory per GPU left outside the static pool after the CUDA
	// context and graphs: what activations may use.
	FreeGB float64
	// GraphGB is the memory the CUDA graphs (and torch.compile) take per GPU.
	GraphGB float64
	// Notes are SGLang's warnings about silent adjustments, in order.
	Notes []string
}

// Constants SGLang uses for scheduling (schedule_batch.py / scheduler.py).
const (
	defaultMaxPrefillTokens  = 16384
	defaultTorchCompileMaxBS = 32
	clipMaxNewTokens         = 4096 // CLIP_MAX_NEW_TOKENS_ESTIMATION
	initNewTokenRatio        = 0.7  // SGLANG_INIT_NEW_TOKEN_RATIO
	minNewTokenRatioFactor   = 0.14 // SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR
	newTokenRatioDecaySteps  = 600  // SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS
	retractDecodeSteps       = 20   // SGLANG_RETRACT_DECODE_STEPS
	lpmFallbackQueue         = 128  // lpm acts as fcfs above this many waiting requests
)

// Memory constants (GiB).
const (
	cudaContextGB = 0.8 // CUDA context + allocator slack per process
	ncclGB        = 0.4 // NCCL / custom all-reduce buffers when ranks talk
)

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// NewPlan resolves cfg for a GPU and a model as SGLang does at launch: it
// fills defaults, applies SGLang's silent adjustments, and returns a
// *LaunchError for configs SGLang refuses or cannot fit, checked in the order
// SGLang hits them (argument checks, device binding, weight loading, KV
// profiling, attention backend init, CUDA-graph capture).
func NewPlan(cfg Config, hw Hardware, m Model) (*Plan, error) {
	p := &Plan{HW: hw, Model: m}
	if err := p.resolveArgs(cfg); err != nil {
		return nil, err
	}
	c := &p.Config
	// Device binding: one rank per GPU.
	if p.GPUsNeeded > max(hw.NumGPUs, 0) {
		return nil, crash(PhaseInit, "RuntimeError",
			"CUDA error: invalid device ordinal\nCUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.\n"+
				"For debugging consider passing CUDA_LAUNCH_BLOCKING=1 (this config needs %d GPUs, %d visible)", p.GPUsNeeded, hw.NumGPUs)
	}
	// Model construction: heads are sharded evenly over TP ranks.
	if m.Heads%c.TP != 0 {
		return nil, crash(PhaseLoad, "AssertionError",
			"Total number of attention heads (%d) must be divisible by tensor parallel size (%d).", m.Heads, c.TP)
	}
	if !m.MLA {
		if (m.KVHeads >= c.TP && m.KVHeads%c.TP != 0) || (m.KVHeads < c.TP && c.TP%m.KVHeads != 0) {
			return nil, crash(PhaseLoad, "AssertionError",
				"Number of key/value heads (%d) and tensor parallel size (%d) must divide one another.", m.KVHeads, c.TP)
		}
	}
	if c.EnableTwoBatchOverlap && !m.MoE {
		return nil, crash(PhaseLoad, "AssertionError",
			"Two-batch overlap (--enable-two-batch-overlap) is only supported for MoE models; %s has no experts to overlap.", m.Architecture)
	}
	if c.ContextLength > m.ContextLength {
		return nil, crash(PhaseLoad, "ValueError",
			"User-specified context_length (%d) is greater than the derived context_length (%d). This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1", c.ContextLength, m.ContextLength)
	}
	if c.ContextLength == 0 {
		c.ContextLength = m.ContextLength
	}
	// Weights.
	p.WeightGB = m.ParamsB * 1e9 * p.weightBytesPerParam() / float64(c.TP*c.PP) / (1 << 30)
	overhead := cudaContextGB
	if c.TP*c.PP > 1 {
		overhead += ncclGB
	}
	if p.WeightGB > hw.MemoryGB-overhead {
		return nil, oom(PhaseLoad, "torch.OutOfMemoryError",
			"CUDA out of memory. Tried to allocate %.2f GiB. GPU 0 has a total capacity of %.2f GiB of which %.2f MiB is free. Of the allocated memory %.2f GiB is allocated by PyTorch, and %.2f MiB is reserved by PyTorch but unallocated.",
			p.WeightGB/float64(m.Layers)*4, hw.MemoryGB, 20.0, hw.MemoryGB-overhead, 64.0)
	}
	// KV pool.
	p.KVBytesPerToken = p.kvBytesPerElem() * float64(m.Layers/max(c.PP, 1)) * m.kvElemsPerTokenLayer(c.TP/p.AttnDP)
	p.KVPoolGB = c.MemFractionStatic*hw.MemoryGB - p.WeightGB
	tokensPerGPU := 0
	if p.KVPoolGB > 0 {
		tokensPerGPU = int(p.KVPoolGB * (1 << 30) / p.KVBytesPerToken)
	}
	tokensPerGPU = tokensPerGPU / c.PageSize * c.PageSize
	if tokensPerGPU <= 0 {
		return nil, oom(PhaseKV, "RuntimeError", "Not enough memory. Please try to increase --mem-fraction-static.")
	}
	p.MaxTotalTokens = tokensPerGPU * p.AttnDP
	if c.MaxTotalTokens > 0 && c.MaxTotalTokens < p.MaxTotalTokens {
		p.MaxTotalTokens = c.MaxTotalTokens / c.PageSize * c.PageSize
		p.Notes = append(p.Notes, "max_total_tokens is capped by --max-total-tokens")
	}
	c.MaxTotalTokens = p.MaxTotalTokens
	// Request pool (model_runner: max_num_reqs).
	pool := min(max(int(float64(p.MaxTotalTokens)/float64(c.ContextLength)*512), 2048), 4096)
	if c.MaxRunningRequests > 0 {
		pool = c.MaxRunningRequests
	}
	p.MaxRunningRequests = pool
	c.MaxRunningRequests = pool
	// Attention backend vs hardware and model.
	for _, b := range uniq(p.PrefillBackend, p.DecodeBackend) {
		if err := p.checkBackend(b); err != nil {
			return nil, err
		}
	}
	// CUDA graphs.
	p.CaptureBS = nil
	if p.CudaGraph {
		p.CaptureBS = captureSizes(c.CudaGraphMaxBS, c.CudaGraphBS, p.MaxRunningRequests, c.EnableTwoBatchOverlap)
		if len(p.CaptureBS) > 0 {
			c.CudaGraphMaxBS = p.CaptureBS[len(p.CaptureBS)-1]
		}
		p.GraphGB = 0.25 + 0.002*float64(c.CudaGraphMaxBS)*float64(m.Hidden)/4096
		if c.EnableTorchCompile {
			p.GraphGB += 0.6
		}
	}
	p.FreeGB = hw.MemoryGB*(1-c.MemFractionStatic) - overhead - p.GraphGB
	if p.CudaGraph && p.FreeGB < 0.1 {
		return nil, oom(PhaseGraph, "Exception",
			"Capture cuda graph failed: CUDA out of memory. Tried to allocate %d.00 MiB. "+
				"Possible solutions:\n1. set --mem-fraction-static to a smaller value (e.g., 0.8 or 0.7)\n"+
				"2. set --cuda-graph-max-bs to a smaller value (e.g., 16)\n3. disable torch compile by not using --enable-torch-compile\n"+
				"4. disable CUDA graph by --disable-cuda-graph. (Not recommended. Huge performance loss)\n"+
				"Open an issue on GitHub https://github.com/sgl-project/sglang/issues/new/choose ", 2*c.CudaGraphMaxBS+64)
	}
	if !p.CudaGraph && p.FreeGB < 0.1 {
		return nil, oom(PhaseKV, "RuntimeError", "Not enough memory. Please try to increase --mem-fraction-static.")
	}
	return p, nil
}

// resolveArgs mirrors ServerArgs.__post_init__ and check_server_args.
func (p *Plan) resolveArgs(cfg Config) error {
	hw, m := p.HW, p.Model
	c := cfg
	c.CudaGraphBS = slices.Clone(cfg.CudaGraphBS)
	for _, f := range []struct {
		name string
		v    int
	}{{"tp_size", c.TP}, {"dp_size", c.DP}, {"pp_size", c.PP}, {"page_size", c.PageSize},
		{"tokenizer_worker_num", c.TokenizerWorkerNum}, {"num_continuous_decode_steps", c.NumContinuousDecodeSteps},
		{"cuda_graph_max_bs", c.CudaGraphMaxBS}, {"max_prefill_tokens", c.MaxPrefillTokens},
		{"stream_interval", c.StreamInterval}, {"max_running_requests", c.MaxRunningRequests},
		{"torch_compile_max_bs", c.TorchCompileMaxBS}} {
		if f.v < 0 {
			return crash(PhaseArgs, "AssertionError", "%s must be a positive integer, got %d", f.name, f.v)
		}
	}
	if c.MemFractionStatic < 0 || c.MemFractionStatic >= 1 {
		return crash(PhaseArgs, "AssertionError", "mem_fraction_static must be in (0, 1), got %g", c.MemFractionStatic)
	}
	c.TP, c.DP, c.PP = orDefault(c.TP, 1), orDefault(c.DP, 1), orDefault(c.PP, 1)
	c.MaxPrefillTokens = orDefault(c.MaxPrefillTokens, defaultMaxPrefillTokens)
	c.TokenizerWorkerNum = orDefault(c.TokenizerWorkerNum, 1)
	c.NumContinuousDecodeSteps = orDefault(c.NumContinuousDecodeSteps, 1)
	c.StreamInterval = orDefault(c.StreamInterval, 1)
	c.TorchCompileMaxBS = orDefault(c.TorchCompileMaxBS, defaultTorchCompileMaxBS)
	if c.ScheduleConservativeness == 0 {
		c.ScheduleConservativeness = 1.0
	}
	if c.SchedulePolicy == "" {
		c.SchedulePolicy = "fcfs"
	}
	if c.SamplingBackend == "" {
		c.SamplingBackend = "flashinfer"
	}
	if c.KVCacheDtype == "" {
		c.KVCacheDtype = "auto"
	}
	if c.Dtype == "" {
		c.Dtype = "auto"
	}
	if c.MoEA2ABackend == "" {
		c.MoEA2ABackend = "none"
	}
	note := func(s string) { p.Notes = append(p.Notes, s) }

	// DP attention (R-DP2, R-DP3).
	if c.EnableDPAttention && c.DP == 1 {
		c.EnableDPAttention = false
		note("DP attention is disabled because dp_size == 1.")
	}
	if c.EnableDPAttention && c.TP%c.DP != 0 {
		return crash(PhaseArgs, "AssertionError", "tp_size (%d) must be divisible by dp_size (%d) when dp attention is enabled", c.TP, c.DP)
	}
	p.Replicas, p.AttnDP = c.DP, 1
	p.GPUsNeeded = c.TP * c.PP * c.DP
	if c.EnableDPAttention {
		p.Replicas, p.AttnDP = 1, c.DP
		p.GPUsNeeded = c.TP * c.PP
		if c.ScheduleConservativeness == 1.0 {
			c.ScheduleConservativeness = 0.3
		}
	}

	// Attention backends (A.2 automatic choice, release semantics).
	if c.AttentionBackend == "" {
		switch {
		case hw.Hopper():
			c.AttentionBackend = "fa3"
		case hw.SMMajor == 10 && !m.MLA:
			c.AttentionBackend = "trtllm_mha"
		case m.MLA && !hw.Blackwell():
			c.AttentionBackend = "triton"
		default:
			c.AttentionBackend = "flashinfer"
		}
	}
	if c.PrefillAttentionBackend != "" && c.PrefillAttentionBackend == c.DecodeAttentionBackend {
		c.AttentionBackend = c.PrefillAttentionBackend
		c.PrefillAttentionBackend, c.DecodeAttentionBackend = "", ""
	}
	if c.AttentionBackend == "fa4" || c.DecodeAttentionBackend == "fa4" {
		return crash(PhaseArgs, "ValueError", "FA4 backend is only supported for prefill. Please use `--prefill-attention-backend fa4` instead.")
	}
	p.PrefillBackend, p.DecodeBackend = c.AttentionBackend, c.AttentionBackend
	if c.PrefillAttentionBackend != "" {
		p.PrefillBackend = c.PrefillAttentionBackend
	}
	if c.DecodeAttentionBackend != "" {
		p.DecodeBackend = c.DecodeAttentionBackend
	}
	if strings.HasPrefix(c.KVCacheDtype, "fp8_e5m2") {
		for _, b := range []*string{&p.PrefillBackend, &p.DecodeBackend, &c.AttentionBackend} {
			if *b == "fa3" {
				*b = "triton"
			}
		}
		note("FlashAttention3 does not support fp8_e5m2 KV cache; switching the attention backend to triton.")
	}
	for _, b := range uniq(p.PrefillBackend, p.DecodeBackend) {
		if b == "trtllm_mha" && hw.SMMajor != 10 {
			return crash(PhaseArgs, "ValueError", "TRTLLM MHA backend is only supported on Blackwell GPUs (SM100). Please use a different backend.")
		}
		if (b == "trtllm_mla" || b == "cutlass_mla") && hw.SMMajor != 10 {
			return crash(PhaseArgs, "ValueError", "%s backend is only supported on Blackwell GPUs (SM100). Please use a different backend.", strings.ToUpper(b))
		}
	}

	// Page size (R-PG2, R-PG3).
	c.PageSize = orDefault(c.PageSize, 1)
	for _, b := range uniq(p.PrefillBackend, p.DecodeBackend) {
		forced := c.PageSize
		switch b {
		case "flashmla", "nsa", "dsa", "hpc_ops":
			forced = 64
		case "cutlass_mla", "ascend":
			forced = 128
		case "trtllm_mha":
			if !slices.Contains([]int{16, 32, 64}, c.PageSize) {
				forced = 64
			}
		case "trtllm_mla":
			if c.PageSize != 32 && c.PageSize != 64 {
				forced = 64
			}
		}
		if forced != c.PageSize {
			note("page_size is set to " + strconv.Itoa(forced) + " for the " + b + " backend.")
			c.PageSize = forced
		}
	}
	if p.PrefillBackend == "fa4" && !m.MLA && c.PageSize != 128 {
		c.PageSize = 128
		note("page_size is set to 128 for the fa4 prefill backend.")
	}

	// GPU-memory dependent defaults (A.3).
	chunkAuto, graphAuto := gpuMemoryDefaults(hw.MemoryGB, c.TP)
	if c.ChunkedPrefillSize == 0 {
		c.ChunkedPrefillSize = chunkAuto
	}
	if c.ChunkedPrefillSize < 0 {
		c.ChunkedPrefillSize = -1
	}
	if c.EnableDPAttention && c.ChunkedPrefillSize > 0 {
		c.ChunkedPrefillSize /= c.DP
		note("chunked_prefill_size is divided by dp_size under DP attention.")
	}
	if c.CudaGraphMaxBS == 0 {
		c.CudaGraphMaxBS = graphAuto
		if len(c.CudaGraphBS) > 0 {
			c.CudaGraphMaxBS = slices.Max(c.CudaGraphBS)
		}
	}
	if c.MemFractionStatic == 0 {
		reserved := 0.5 + 1.5*float64(max(c.ChunkedPrefillSize, 2048))/1024 + 2*float64(c.CudaGraphMaxBS)/1024
		if hw.MemoryGB > 60 {
			reserved = max(reserved, 10)
		}
		c.MemFractionStatic = math.Round((hw.MemoryGB-reserved)/hw.MemoryGB*1000) / 1000
	}

	// CUDA graph (R-CG1).
	p.CudaGraph = !c.DisableCudaGraph
	if p.CudaGraph && (p.DecodeBackend == "torch_native" || p.DecodeBackend == "flex_attention") {
		p.CudaGraph = false
		c.DisableCudaGraph = true
		note("Cuda graph is disabled because of using " + p.DecodeBackend + " attention backend")
	}

	// Overlap, mixed chunk, pipeline (R-PP1, R-C2, R-PP3).
	if c.PP > 1 && !c.DisableOverlapSchedule {
		c.DisableOverlapSchedule = true
		note("Pipeline parallelism is incompatible with overlap schedule. Overlap schedule is disabled.")
	}
	if c.EnableMixedChunk && c.ChunkedPrefillSize <= 0 {
		c.EnableMixedChunk = false
		note("Mixed chunk is disabled because chunked prefill is disabled.")
	}
	if c.PP > 1 && c.EnableMixedChunk {
		return crash(PhaseArgs, "AssertionError", "Pipeline parallelism is not compatible with overlap schedule, speculative decoding, mixed chunked prefill.")
	}

	// Two-batch overlap (R-TBO1, R-TBO3).
	if c.EnableTwoBatchOverlap && c.MoEA2ABackend == "none" {
		return crash(PhaseArgs, "AssertionError", "Two-batch overlap requires --moe-a2a-backend to be set (e.g. deepep); got moe_a2a_backend=none.")
	}
	if c.MoEA2ABackend != "none" {
		c.EPSize = c.TP
	}
	c.EPSize = orDefault(c.EPSize, 1)

	// Chunk vs page (R-PG1, R-PG4).
	if c.ChunkedPrefillSize > 0 && c.ChunkedPrefillSize%c.PageSize != 0 {
		return crash(PhaseArgs, "AssertionError", "chunked_prefill_size (%d) must be divisible by page_size (%d)", c.ChunkedPrefillSize, c.PageSize)
	}
	// Tokenizer workers (R-TK1).
	if c.TokenizerWorkerNum > 1 && c.HasAPIKey {
		return crash(PhaseArgs, "AssertionError", "api_key is not supported in multi-tokenizer mode (tokenizer_worker_num > 1)")
	}
	// Scheduling policy (R-SP1).
	if c.DisableRadixCache && (c.SchedulePolicy == "lpm" || c.SchedulePolicy == "dfs-weight") {
		note("Radix cache is disabled; schedule_policy " + c.SchedulePolicy + " falls back to fcfs.")
		c.SchedulePolicy = "fcfs"
	}
	if c.SamplingBackend == "ascend" {
		return crash(PhaseArgs, "ValueError", "sampling_backend ascend requires an Ascend NPU (--device npu).")
	}
	// Deterministic inference (R-S1).
	if c.EnableDeterministicInference {
		c.SamplingBackend = "pytorch"
		for _, b := range uniq(p.PrefillBackend, p.DecodeBackend) {
			if b != "flashinfer" && b != "fa3" && b != "triton" {
				return crash(PhaseArgs, "ValueError", "Currently only flashinfer, fa3 and triton attention backends are supported for deterministic inference, got %s.", b)
			}
		}
	}
	p.Config = c
	return nil
}

// checkBackend applies the attention-backend rules R-A1 .. R-A6 that strike
// when the backend initialises.
func (p *Plan) checkBackend(b string) error {
	hw, m := p.HW, p.Model
	switch b {
	case "fa3":
		if hw.SMMajor > 9 || hw.SMMajor < 8 {
			return crash(PhaseAttention, "AssertionError",
				"FlashAttention v3 Backend requires SM>=80 and SM<=90. Please use `--attention-backend flashinfer`.")
		}
		if m.MLA && hw.SMMajor != 9 {
			return crash(PhaseAttention, "AssertionError",
				"FlashAttention v3 Backend with MLA requires SM90 (Hopper), got SM%d%d. Please use `--attention-backend flashinfer` or `triton`.", hw.SMMajor, hw.SMMinor)
		}
	case "fa4":
		if !hw.Blackwell() {
			return crash(PhaseAttention, "AssertionError",
				"FlashAttention v4 Backend requires SM100 (Blackwell), got SM%d%d.", hw.SMMajor, hw.SMMinor)
		}
	case "trtllm_mha":
		if m.MLA {
			return crash(PhaseAttention, "ValueError", "trtllm_mha backend can only be used with non-MLA models.")
		}
	case "cutedsl_mla", "tokenspeed_mla":
		if !m.MLA {
			return crash(PhaseAttention, "ValueError", "%s backend can only be used with MLA models.", b)
		}
		if hw.SMMajor != 10 {
			return crash(PhaseAttention, "ValueError", "%s backend is only supported on Blackwell GPUs (SM100).", b)
		}
	case "hpc_ops":
		if !hw.Hopper() {
			return crash(PhaseAttention, "ValueError", "hpc_ops attention backend is only supported on SM90 GPUs.")
		}
	case "trtllm_mla", "cutlass_mla", "flashmla":
		if !m.MLA {
			return crash(PhaseAttention, "ValueError", "%s backend can only be used with MLA models.", b)
		}
		if b == "flashmla" && !hw.Hopper() {
			return crash(PhaseAttention, "AssertionError", "FlashMLA requires SM90 (Hopper).")
		}
	case "torch_native", "flex_attention":
		if m.MLA {
			return crash(PhaseAttention, "NotImplementedError", "%s attention backend does not support MLA models.", b)
		}
	case "aiter", "wave":
		return crash(PhaseAttention, "ImportError", "%s attention backend is only available on AMD ROCm GPUs.", b)
	case "intel_amx":
		return crash(PhaseAttention, "RuntimeError", "intel_amx attention backend requires --device cpu.")
	case "ascend":
		return crash(PhaseAttention, "ImportError", "ascend attention backend requires an Ascend NPU (torch_npu is not installed).")
	case "intel_xpu":
		return crash(PhaseAttention, "RuntimeError", "intel_xpu attention backend requires --device xpu.")
	case "nsa", "dsa":
		return crash(PhaseAttention, "ValueError", b+" attention backend only supports DeepSeek-V3.2 (native sparse attention) models, got %s.", m.Architecture)
	case "dual_chunk_flash_attn":
		return crash(PhaseAttention, "ValueError", "dual_chunk_flash_attn backend requires a dual-chunk attention model config, got %s.", m.Architecture)
	}
	return nil
}

func gpuMemoryDefaults(memGB float64, tp int) (chunk, graphBS int) {
	pick := func(small, large int) int {
		if tp < 4 {
			return small
		}
		return large
	}
	switch {
	case memGB <= 0:
		return 4096, 160
	case memGB < 20:
		return 2048, 8
	case memGB < 35:
		return 2048, pick(24, 80)
	case memGB < 60:
		return 4096, pick(32, 160)
	case memGB < 90:
		return 8192, pick(256, 512)
	case memGB < 160:
		return 8192, pick(256, 512)
	default:
		return 16384, 512
	}
}

// captureSizes lists the CUDA-graph batch sizes SGLang captures (A.3).
func captureSizes(maxBS int, explicit []int, pool int, tbo bool) []int {
	var bs []int
	if len(explicit) > 0 {
		bs = slices.Clone(explicit)
	} else {
		bs = []int{1, 2, 4, 8, 12}
		for b := 16; b <= 256; b += 8 {
			bs = append(bs, b)
		}
		for b := 272; b <= 496; b += 16 {
			bs = append(bs, b)
		}
		for b := 512; b <= maxBS; b += 32 {
			bs = append(bs, b)
		}
		bs = slices.DeleteFunc(bs, func(b int) bool { return b > maxBS })
		if !slices.Contains(bs, maxBS) {
			bs = append(bs, maxBS)
		}
	}
	bs = slices.DeleteFunc(bs, func(b int) bool { return b > pool || b < 1 || (tbo && b < 2) })
	slices.Sort(bs)
	return slices.Compact(bs)
}

func (p *Plan) weightBytesPerParam() float64 {
	switch strings.ToLower(p.Config.Quantization) {
	case "", "none":
	case "awq", "gptq", "awq_marlin", "gptq_marlin", "marlin", "moe_wna16", "w4afp8", "mxfp4", "modelopt_fp4", "qoq":
		return 0.55
	default: // fp8, w8a8_fp8, w8a8_int8, modelopt_fp8, bitsandbytes, ...
		return 1
	}
	if d := strings.ToLower(p.Config.Dtype); d == "float" || d == "float32" {
		return 4
	}
	return 2
}

func (p *Plan) kvBytesPerElem() float64 {
	k := strings.ToLower(p.Config.KVCacheDtype)
	if strings.HasPrefix(k, "fp8") || strings.HasPrefix(k, "fp4") {
		return 1
	}
	if d := strings.ToLower(p.Config.Dtype); k == "auto" && (d == "float" || d == "float32") {
		return 4
	}
	return 2
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
