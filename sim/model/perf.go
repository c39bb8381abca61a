package model

import (
	"math"
	"sort"
)

// Performance constants. Each is documented in docs/simulator.md with its
// source; "D.1" refers to reference/sglang.md §D.1.
const (
	// bwEff is the fraction of peak HBM bandwidth reached when streaming the
	// weights in a decode step: 8B bf16 on H100 at bs 1 measures 7.06 ms with
	// CUDA graphs (sglang PR #1401), i.e. 16 GB / (3.35 TB/s * 0.75) + ~0.6 ms.
	bwEff = 0.75
	// attnBWEff is the bandwidth efficiency of a good decode-attention kernel
	// streaming the KV cache.
	attnBWEff = 0.85
	// decodeMFU and prefillMFU are the FLOP efficiencies of the dense layers
	// once compute-bound (D.1: prefill MFU 0.4-0.6).
	decodeMFU  = 0.55
	prefillMFU = 0.5
	// attnMFU is the FLOP efficiency of FlashAttention-3 prefill attention.
	attnMFU = 0.45
	// graphReplayMs is the per-step cost of replaying a CUDA graph plus sampling.
	graphReplayMs = 0.3
	// eagerMsPerLayer is the extra kernel-launch cost per layer of an eager
	// (no CUDA graph) decode step; times the backend's eager factor it gives
	// PR #1401's +0.9 ms (flashinfer) and +2.2 ms (triton) for 8B.
	eagerMsPerLayer = 0.045
	// prefillFixedMs and prefillMsPerLayer: prefill runs eagerly.
	prefillFixedMs    = 0.3
	prefillMsPerLayer = 0.02
	// Scheduler CPU time per iteration (Python): fixed plus per request.
	cpuDecodeMs        = 0.45
	cpuDecodePerReqMs  = 0.003
	cpuPrefillMs       = 0.9
	cpuPrefillPerReqMs = 0.02
	// overlapResidualMs is what the overlap scheduler cannot hide.
	overlapResidualMs = 0.03
	// tokenizerChunkMs is the tokenizer manager's cost per streamed chunk; it
	// bounds the output rate of one tokenizer worker.
	tokenizerChunkMs = 0.02
	// compileGain is the fraction of compute-bound decode time torch.compile
	// saves for batches <= torch_compile_max_bs (D.1: 0.7-0.85x; recent
	// issues say gains are now small).
	compileGain = 0.12
	// prefillRampTokens: prefill GEMMs reach half of prefillMFU at this many tokens.
	prefillRampTokens = 256
	// Two-batch overlap (MoE with an all-to-all backend).
	tboMinBatch     = 32
	tboCommHidden   = 0.5
	tboComputeGain  = 0.05
	tboSmallBatchMs = 0.1
	tboPrefillGain  = 0.15
	// p2pMs is one pipeline-stage hand-off.
	p2pMs = 0.04
	// lpmMsPerReq is the prefix-matching cost per waiting request per round.
	lpmMsPerReq = 0.002
)

// backendPerf holds an attention backend's efficiency relative to FA3.
type backendPerf struct {
	decodeEff, prefillEff float64 // multiply attnBWEff / attnMFU
	eagerFactor           float64 // multiplies eagerMsPerLayer
	stepMs                float64 // extra per-step cost (planning, Python loops)
	perReqMs              float64 // extra per-request per-step cost
}

var backendPerfs = map[string]backendPerf{
	"fa3":                   {1.0, 1.0, 1.0, 0, 0},
	"flashinfer":            {0.97, 0.9, 0.62, 0.05, 0},
	"triton":                {0.8, 0.6, 1.5, 0, 0},
	"torch_native":          {0.3, 0.15, 3.0, 0.3, 0.04},
	"flex_attention":        {0.5, 0.45, 2.0, 0.2, 0},
	"fa4":                   {1.05, 1.15, 0.9, 0, 0},
	"trtllm_mha":            {1.05, 1.0, 0.9, 0, 0},
	"trtllm_mla":            {1.05, 1.0, 0.9, 0, 0},
	"cutlass_mla":           {1.0, 1.0, 0.9, 0, 0},
	"flashmla":              {1.05, 1.0, 0.9, 0, 0},
	"dual_chunk_flash_attn": {0.9, 0.9, 1.0, 0, 0},
}

func perfOf(b string) backendPerf {
	if bp, ok := backendPerfs[b]; ok {
		return bp
	}
	return backendPerf{0.8, 0.6, 1.5, 0, 0}
}

func (p *Plan) bw() float64 { return p.HW.HBMTBps * 1e12 }

func (p *Plan) peak() float64 {
	if p.weightBytesPerParam() == 1 && p.HW.FP8TFLOPS > 0 {
		return p.HW.FP8TFLOPS * 1e12
	}
	return p.HW.BF16TFLOPS * 1e12
}

// weightBytesTouched is the weight bytes (whole model, all ranks) a forward
// pass over `tokens` tokens reads: for MoE only the experts some token routes to.
func (p *Plan) weightBytesTouched(tokens int) float64 {
	m := p.Model
	b := p.weightBytesPerParam()
	if !m.MoE || m.Experts == 0 {
		return m.ParamsB * 1e9 * b
	}
	frac := 1 - math.Pow(1-float64(m.TopK)/float64(m.Experts), float64(max(tokens, 1)))
	return ((m.ParamsB-m.ExpertParamsB)*1e9 + m.ExpertParamsB*1e9*frac) * b
}

// allReduceSeconds is the TP all-reduce cost of one forward over `tokens` tokens.
func (p *Plan) allReduceSeconds(tokens int, eager bool) float64 {
	tp := p.Config.TP
	if tp <= 1 {
		return 0
	}
	m := p.Model
	lat := p.HW.AllReduceLatencyUs * 1e-6
	if eager {
		lat *= 1.5
	}
	msg := float64(tokens) * float64(m.Hidden) * 2 * 2 * float64(tp-1) / float64(tp)
	perLayer := 2 * (lat + msg/(p.HW.LinkGBps*1e9))
	if p.AttnDP > 1 {
		perLayer *= 1.5 // gather/scatter around the data-parallel attention
	}
	return float64(m.Layers) * perLayer
}

// paddedBS is the captured graph size a decode batch of bs runs at, or bs
// itself (eager) when it exceeds the largest captured size.
func (p *Plan) paddedBS(bs int) (int, bool) {
	if !p.CudaGraph || len(p.CaptureBS) == 0 {
		return bs, false
	}
	i := sort.SearchInts(p.CaptureBS, bs)
	if i == len(p.CaptureBS) {
		return bs, false
	}
	return p.CaptureBS[i], true
}

// decodeGPUSeconds is the GPU time of one decode step of bs requests whose
// contexts sum to ctx tokens.
func (p *Plan) decodeGPUSeconds(bs int, ctx float64) float64 {
	c, m := p.Config, p.Model
	run, graph := p.paddedBS(bs)
	pp := max(c.PP, 1)
	mb := (run + pp - 1) / pp // micro-batch per pipeline stage
	ctxMB := ctx / float64(pp)
	tp := float64(c.TP)
	bp := perfOf(p.DecodeBackend)

	tMem := p.weightBytesTouched(mb) / tp / (p.bw() * bwEff)
	tFlop := 2 * m.ActiveParamsB * 1e9 * float64(mb) / (tp * p.peak() * decodeMFU)
	tLin := max(tMem, tFlop)
	// KV streaming: each GPU reads its share of the cache. KVBytesPerToken is
	// per GPU for the layers it holds; with pp it holds layers/pp, and the
	// micro-batch's context is ctx/pp, while all pp stages run in sequence
	// within one cycle.
	ctxPerGPU := ctxMB / float64(p.AttnDP)
	tAttn := ctxPerGPU * p.KVBytesPerToken * float64(pp) / (p.bw() * attnBWEff * bp.decodeEff)
	compute := tLin + tAttn
	if graph && c.EnableTorchCompile && run <= c.TorchCompileMaxBS {
		compute *= 1 - compileGain
	}
	ar := p.allReduceSeconds(mb, !graph)
	if c.EnableTwoBatchOverlap {
		// TBO splits the batch in two and overlaps one half's communication
		// with the other's compute; below ~32 requests the halves are too
		// small to hide anything and the split costs a little.
		if mb >= tboMinBatch {
			ar *= 1 - tboCommHidden
			compute *= 1 - tboComputeGain
		} else {
			compute += tboSmallBatchMs / 1000
		}
	}
	t := compute + ar
	if graph {
		t += graphReplayMs / 1000
	} else {
		t += eagerMsPerLayer / 1000 * float64(m.Layers) * bp.eagerFactor
	}
	t += (bp.stepMs + bp.perReqMs*float64(bs)) / 1000
	if pp > 1 {
		t += float64(pp) * p2pMs / 1000
	}
	return t
}

func (p *Plan) decodeCPUSeconds(bs, queue int) float64 {
	c := p.Config
	fixed := cpuDecodeMs + p.policyMs(queue)
	fixed /= float64(c.NumContinuousDecodeSteps)
	ms := fixed + cpuDecodePerReqMs*float64(bs)
	if c.SamplingBackend == "pytorch" {
		ms += 0.03 + 0.0004*float64(bs)
	}
	return ms / 1000
}

// policyMs is the scheduler's prefix-matching cost per round: lpm matches
// every waiting request up to lpmFallbackQueue of them (then acts as fcfs),
// dfs-weight always does.
func (p *Plan) policyMs(queue int) float64 {
	switch c := p.Config; {
	case c.SchedulePolicy == "lpm" && queue <= lpmFallbackQueue, c.SchedulePolicy == "dfs-weight":
		return lpmMsPerReq * float64(queue)
	}
	return 0
}

// combine joins GPU and CPU time per the overlap scheduler setting.
func (p *Plan) combine(gpu, cpu float64) float64 {
	if p.Config.DisableOverlapSchedule {
		return gpu + cpu
	}
	return max(gpu, cpu) + overlapResidualMs/1000
}

// tokenizerBound is the shortest time the tokenizer manager needs to emit
// `chunks` streamed chunks.
func (p *Plan) tokenizerBound(chunks float64) float64 {
	return chunks * tokenizerChunkMs / 1000 / float64(p.Config.TokenizerWorkerNum)
}

// DecodeStepSeconds is the wall time of one decode step of a replica running
// bs requests whose contexts (prompt + generated tokens) sum to ctxTokens,
// with `queue` requests waiting. It covers the weight and KV streaming, the
// FLOP bound, TP all-reduces, CUDA-graph replay or eager launches (batches
// above the largest captured size run eagerly), torch.compile, pipeline
// micro-batching, the scheduler's CPU time (hidden by the overlap scheduler)
// and the tokenizer manager's output bound.
func (p *Plan) DecodeStepSeconds(bs int, ctxTokens float64, queue int) float64 {
	if bs <= 0 {
		return 0
	}
	t := p.combine(p.decodeGPUSeconds(bs, ctxTokens), p.decodeCPUSeconds(bs, queue))
	return max(t, p.tokenizerBound(float64(bs)/float64(p.Config.StreamInterval)))
}

// PrefillSeconds is the wall time of one prefill (extend) iteration that
// computes newTokens prompt tokens of nReqs requests, where attnWork is
// sum(t_i * (prefix_i + t_i/2)) over the requests' extend lengths t_i and
// already-cached prefixes; with mixed chunk, decBS running requests with
// decCtx context tokens ride along and each get a token.
func (p *Plan) PrefillSeconds(newTokens int, attnWork float64, nReqs, decBS int, decCtx float64, queue int) float64 {
	c, m := p.Config, p.Model
	tokens := newTokens + decBS
	tp := float64(c.TP)
	bp := perfOf(p.PrefillBackend)
	tMem := p.weightBytesTouched(tokens) / tp / (p.bw() * bwEff)
	// GEMM efficiency ramps up with the number of tokens (small chunks
	// under-fill the tensor cores): half of prefillMFU at 256 tokens.
	mfu := prefillMFU * float64(tokens) / float64(tokens+prefillRampTokens)
	tFlop := 2 * m.ActiveParamsB * 1e9 * float64(tokens) / (tp * p.peak() * mfu)
	headDim := m.HeadDim
	if m.MLA {
		headDim = (m.HeadDim + 128) / 2 // qk 192, v 128
	}
	attnFlops := 4 * float64(m.Layers) * float64(m.Heads) * float64(headDim) * attnWork
	tAttn := attnFlops / (tp * p.HW.BF16TFLOPS * 1e12 * attnMFU * bp.prefillEff)
	if decBS > 0 {
		tAttn += decCtx / float64(p.AttnDP) * p.KVBytesPerToken / (p.bw() * attnBWEff * perfOf(p.DecodeBackend).decodeEff)
	}
	gpu := max(tMem, tFlop) + tAttn + p.allReduceSeconds(tokens, true) +
		(prefillFixedMs+prefillMsPerLayer*float64(m.Layers))/1000
	if c.EnableTwoBatchOverlap && tokens >= 2*prefillRampTokens {
		gpu *= 1 - tboPrefillGain // LMSYS large-scale EP blog: +27-35% prefill throughput at scale
	}
	if c.PP > 1 {
		// SGLang's PP overlaps micro-batches of different chunks; assume the
		// pipeline stays full, so a chunk costs one stage plus the hand-offs.
		gpu = gpu/float64(c.PP) + float64(c.PP-1)*p2pMs/1000
	}
	cpu := (cpuPrefillMs + cpuPrefillPerReqMs*float64(nReqs) + cpuDecodePerReqMs*float64(decBS) + p.policyMs(queue)) / 1000
	t := p.combine(gpu, cpu)
	return max(t, p.tokenizerBound(float64(nReqs+decBS)))
}

// PrefillChunkSeconds is PrefillSeconds for one request extending `tokens`
// tokens after a cached or already-prefilled prefix of `prefix` tokens.
func (p *Plan) PrefillChunkSeconds(tokens, prefix int) float64 {
	t := float64(tokens)
	return p.PrefillSeconds(tokens, t*(float64(prefix)+t/2), 1, 0, 0, 0)
}

// ActivationGB is the transient memory per GPU of a forward over `tokens`
// tokens of nReqs requests (hidden states, MLP intermediates, logits).
func (p *Plan) ActivationGB(tokens, nReqs int) float64 {
	m := p.Model
	tp := float64(p.Config.TP)
	perToken := 2 * (6*float64(m.Hidden) + 3*float64(m.Intermediate)/tp)
	logits := float64(nReqs) * float64(m.Vocab) * 4 * 2 / tp
	return (float64(tokens)*perToken + logits) / (1 << 30)
}

// FitsActivations reports whether a forward over tokens/nReqs fits in the
// memory outside the static pool; when it does not, SGLang dies with
// torch.OutOfMemoryError at runtime.
func (p *Plan) FitsActivations(tokens, nReqs int) bool {
	return p.ActivationGB(tokens, nReqs) <= p.FreeGB
}

// KVCapacityTokens is the KV capacity of one replica in tokens.
func (p *Plan) KVCapacityTokens() int { return p.MaxTotalTokens }

// StartupPhase is one step of server startup and its modelled duration.
type StartupPhase struct {
	// Name is "init", "load", "kv", "graph", "compile" or "warmup".
	Name    string
	Seconds float64
}

// StartupPhases is the modelled startup timeline (before any time scale).
func (p *Plan) StartupPhases() []StartupPhase {
	c, m := p.Config, p.Model
	ranks := p.GPUsNeeded
	init := 6.0 + 1.0*float64(c.TokenizerWorkerNum-1) + 0.5*math.Log2(float64(max(ranks, 1)))
	if p.Replicas > 1 {
		init += 0.5 * float64(p.Replicas)
	}
	load := 2.0 + p.WeightGB/2.0 // ~2 GiB/s per rank from a warm page cache / NVMe
	kv := 1.0 + p.KVPoolGB/80
	phases := []StartupPhase{{"init", init}, {"load", load}, {"kv", kv}}
	if p.CudaGraph {
		perSize := 0.1 + 0.008*float64(m.Layers/max(c.PP, 1))
		if c.TP > 1 {
			perSize *= 1.2
		}
		phases = append(phases, StartupPhase{"graph", float64(len(p.CaptureBS)) * perSize})
		if c.EnableTorchCompile {
			n := 0
			for _, b := range p.CaptureBS {
				if b <= c.TorchCompileMaxBS {
					n++
				}
			}
			phases = append(phases, StartupPhase{"compile", 25 + float64(n)*(1.5+0.05*float64(m.Layers))})
		}
	}
	if !c.SkipServerWarmup {
		w := 0.5 + p.PrefillChunkSeconds(7, 0) + 8*p.DecodeStepSeconds(1, 10, 0)
		phases = append(phases, StartupPhase{"warmup", w})
	}
	return phases
}

// StartupSeconds is the total modelled startup time: process start until
// /health_generate first answers 200.
func (p *Plan) StartupSeconds() float64 {
	s := 0.0
	for _, ph := range p.StartupPhases() {
		s += ph.Seconds
	}
	return s
}
