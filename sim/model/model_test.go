package model

import (
	"errors"
	"strings"
	"testing"
)

func mustGPU(t *testing.T, name string, n int) Hardware {
	t.Helper()
	hw, ok := GPUPreset(name)
	if !ok {
		t.Fatalf("no GPU preset %q", name)
	}
	hw.NumGPUs = n
	return hw
}

func mustModel(t *testing.T, name string) Model {
	t.Helper()
	m, ok := ModelPreset(name)
	if !ok {
		t.Fatalf("no model preset %q", name)
	}
	return m
}

func mustPlan(t *testing.T, cfg Config, hw Hardware, m Model) *Plan {
	t.Helper()
	p, err := NewPlan(cfg, hw, m)
	if err != nil {
		t.Fatalf("NewPlan(%+v): %v", cfg, err)
	}
	return p
}

func TestDecodeStep_calibration(t *testing.T) {
	// sglang PR #1401: Llama-3-8B, bs 1, CUDA graph: 7.06 ms (triton) / 7.35 ms (flashinfer);
	// without CUDA graph +2.2 ms (triton) / +0.9 ms (flashinfer).
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	tests := []struct {
		name       string
		givenCfg   Config
		expectedMs float64
	}{
		{"fa3 graph", Config{}, 7.0},
		{"flashinfer graph", Config{AttentionBackend: "flashinfer"}, 7.35},
		{"flashinfer eager", Config{AttentionBackend: "flashinfer", DisableCudaGraph: true}, 8.23},
		{"triton eager", Config{AttentionBackend: "triton", DisableCudaGraph: true}, 9.28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.givenCfg, hw, m)
			got := p.DecodeStepSeconds(1, 512, 0) * 1000
			if got < tt.expectedMs*0.85 || got > tt.expectedMs*1.15 {
				t.Fatalf("decode step = %.2f ms, want %.2f ms +-15%%", got, tt.expectedMs)
			}
		})
	}
}

func TestDecodeStep_monotonic(t *testing.T) {
	hw, m := mustGPU(t, "H100", 8), mustModel(t, "llama-3.1-8b")
	step := func(cfg Config, bs int) float64 {
		return mustPlan(t, cfg, hw, m).DecodeStepSeconds(bs, float64(bs)*1500, 0)
	}
	tests := []struct {
		name           string
		faster, slower Config
		bs             int
	}{
		{"tp2 faster than tp1", Config{TP: 2}, Config{}, 32},
		{"tp4 faster than tp2", Config{TP: 4}, Config{TP: 2}, 32},
		{"tp8 faster than tp4", Config{TP: 8}, Config{TP: 4}, 32},
		{"cuda graph faster than eager", Config{}, Config{DisableCudaGraph: true}, 8},
		{"fa3 faster than triton", Config{AttentionBackend: "fa3"}, Config{AttentionBackend: "triton"}, 128},
		{"flashinfer faster than torch_native", Config{AttentionBackend: "flashinfer"}, Config{AttentionBackend: "torch_native"}, 16},
		{"overlap faster than no overlap", Config{}, Config{DisableOverlapSchedule: true}, 64},
		{"torch.compile faster at small batch", Config{EnableTorchCompile: true}, Config{}, 4},
		{"captured batch faster than eager batch", Config{CudaGraphMaxBS: 512}, Config{CudaGraphMaxBS: 128}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, s := step(tt.faster, tt.bs), step(tt.slower, tt.bs)
			if f >= s {
				t.Fatalf("want %.3f ms < %.3f ms", f*1000, s*1000)
			}
		})
	}
	// Bigger batches take longer per step but give more tokens per second.
	p := mustPlan(t, Config{}, hw, m)
	prev, prevTput := 0.0, 0.0
	for _, bs := range []int{1, 8, 32, 128, 256} {
		d := p.DecodeStepSeconds(bs, float64(bs)*1500, 0)
		if d <= prev || float64(bs)/d <= prevTput {
			t.Fatalf("bs %d: step %.3f ms (prev %.3f), tput %.0f (prev %.0f)", bs, d*1000, prev*1000, float64(bs)/d, prevTput)
		}
		prev, prevTput = d, float64(bs)/d
	}
}

func TestPrefill_scalesWithTokensAndTP(t *testing.T) {
	hw, m := mustGPU(t, "H100", 4), mustModel(t, "llama-3.1-8b")
	p1 := mustPlan(t, Config{}, hw, m)
	p4 := mustPlan(t, Config{TP: 4}, hw, m)
	a, b := p1.PrefillChunkSeconds(1024, 0), p1.PrefillChunkSeconds(4096, 0)
	if b < 3*a {
		t.Fatalf("prefill 4096 = %.1f ms, 1024 = %.1f ms: want roughly linear", b*1000, a*1000)
	}
	if p4.PrefillChunkSeconds(4096, 0) >= b/2 {
		t.Fatalf("tp4 prefill not faster enough: %.1f vs %.1f ms", p4.PrefillChunkSeconds(4096, 0)*1000, b*1000)
	}
	// D.1: ~2*params*tokens/(peak*MFU): 8B, 1024 tokens on H100 is tens of ms.
	if a < 0.02 || a > 0.08 {
		t.Fatalf("prefill 1024 tokens = %.1f ms, want 20-80 ms", a*1000)
	}
}

func TestNewPlan_effectiveArgs(t *testing.T) {
	m8, dsv2 := mustModel(t, "llama-3.1-8b"), mustModel(t, "deepseek-v2-lite")
	tests := []struct {
		name  string
		gpu   string
		model Model
		cfg   Config
		check func(t *testing.T, p *Plan)
	}{
		{"H100 defaults", "H100", m8, Config{}, func(t *testing.T, p *Plan) {
			c := p.Config
			if c.AttentionBackend != "fa3" || c.ChunkedPrefillSize != 8192 || c.CudaGraphMaxBS != 256 || c.PageSize != 1 {
				t.Fatalf("got backend %s chunk %d graph %d page %d", c.AttentionBackend, c.ChunkedPrefillSize, c.CudaGraphMaxBS, c.PageSize)
			}
			if c.MemFractionStatic < 0.8 || c.MemFractionStatic > 0.9 || p.MaxTotalTokens < 300000 {
				t.Fatalf("mem fraction %.3f, tokens %d", c.MemFractionStatic, p.MaxTotalTokens)
			}
		}},
		{"A100-40G defaults", "A100-40G", m8, Config{}, func(t *testing.T, p *Plan) {
			if p.Config.AttentionBackend != "flashinfer" || p.Config.ChunkedPrefillSize != 4096 || p.Config.CudaGraphMaxBS != 32 {
				t.Fatalf("got %+v", p.Config)
			}
		}},
		{"B200 defaults", "B200", m8, Config{}, func(t *testing.T, p *Plan) {
			if p.Config.AttentionBackend != "trtllm_mha" || p.Config.PageSize != 64 || p.Config.ChunkedPrefillSize != 16384 {
				t.Fatalf("got %+v", p.Config)
			}
		}},
		{"overlap off with pp", "H100", m8, Config{PP: 2}, func(t *testing.T, p *Plan) {
			if !p.Config.DisableOverlapSchedule {
				t.Fatal("overlap still on with pp 2")
			}
		}},
		{"torch_native disables cuda graph", "H100", m8, Config{AttentionBackend: "torch_native"}, func(t *testing.T, p *Plan) {
			if p.CudaGraph || !p.Config.DisableCudaGraph {
				t.Fatal("cuda graph still on")
			}
		}},
		{"flashmla forces page 64", "H100", dsv2, Config{AttentionBackend: "flashmla"}, func(t *testing.T, p *Plan) {
			if p.Config.PageSize != 64 {
				t.Fatalf("page %d", p.Config.PageSize)
			}
		}},
		{"mixed chunk off without chunking", "H100", m8, Config{ChunkedPrefillSize: -1, EnableMixedChunk: true}, func(t *testing.T, p *Plan) {
			if p.Config.EnableMixedChunk {
				t.Fatal("mixed chunk still on")
			}
		}},
		{"dp attention off with dp 1", "H100", dsv2, Config{EnableDPAttention: true}, func(t *testing.T, p *Plan) {
			if p.Config.EnableDPAttention || p.GPUsNeeded != 1 {
				t.Fatal("dp attention still on")
			}
		}},
		{"dp attention divides chunk", "H100", dsv2, Config{TP: 4, DP: 4, EnableDPAttention: true}, func(t *testing.T, p *Plan) {
			if p.Config.ChunkedPrefillSize != 2048 || p.GPUsNeeded != 4 || p.Replicas != 1 {
				t.Fatalf("chunk %d gpus %d replicas %d", p.Config.ChunkedPrefillSize, p.GPUsNeeded, p.Replicas)
			}
		}},
		{"capture list capped by max running", "H100", m8, Config{MaxRunningRequests: 100}, func(t *testing.T, p *Plan) {
			if last := p.CaptureBS[len(p.CaptureBS)-1]; last > 100 || p.Config.CudaGraphMaxBS > 100 {
				t.Fatalf("largest captured %d", last)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustPlan(t, tt.cfg, mustGPU(t, tt.gpu, 8), tt.model))
		})
	}
}

func TestNewPlan_launchErrors(t *testing.T) {
	m8, m70, qwen, dsv2 := mustModel(t, "llama-3.1-8b"), mustModel(t, "llama-3.1-70b"), mustModel(t, "qwen2.5-7b"), mustModel(t, "deepseek-v2-lite")
	tests := []struct {
		name          string
		gpu           string
		gpus          int
		model         Model
		cfg           Config
		expectedClass string
		expectedPhase string
		expectedText  string
	}{
		{"fa4 as attention backend", "H100", 1, m8, Config{AttentionBackend: "fa4"}, ClassCrash, PhaseArgs, "only supported for prefill"},
		{"fa4 as decode backend", "H100", 1, m8, Config{DecodeAttentionBackend: "fa4"}, ClassCrash, PhaseArgs, "only supported for prefill"},
		{"fa4 prefill on Hopper", "H100", 1, m8, Config{PrefillAttentionBackend: "fa4"}, ClassCrash, PhaseAttention, "FlashAttention v4"},
		{"fa3 on A100 with MLA", "A100-80G", 1, dsv2, Config{AttentionBackend: "fa3"}, ClassCrash, PhaseAttention, "FlashAttention v3"},
		{"fa3 on Blackwell", "B200", 1, m8, Config{AttentionBackend: "fa3"}, ClassCrash, PhaseAttention, "FlashAttention v3"},
		{"70B on one 80 GB GPU", "H100", 1, m70, Config{}, ClassOOM, PhaseLoad, "out of memory"},
		{"70B tp2 low mem fraction", "H100", 2, m70, Config{TP: 2, MemFractionStatic: 0.5}, ClassOOM, PhaseKV, "Not enough memory"},
		{"more GPUs than visible", "H100", 2, m8, Config{TP: 2, DP: 2}, ClassCrash, PhaseInit, "invalid device ordinal"},
		{"tp does not divide heads", "H100", 8, qwen, Config{TP: 8}, ClassCrash, PhaseLoad, "divisible by tensor parallel size"},
		{"chunk not multiple of page", "H100", 1, m8, Config{ChunkedPrefillSize: 3000, PageSize: 64}, ClassCrash, PhaseArgs, "divisible by page_size"},
		{"chunk vs forced page", "B200", 1, m8, Config{ChunkedPrefillSize: 3000}, ClassCrash, PhaseArgs, "divisible by page_size"},
		{"two-batch overlap on dense", "H100", 1, m8, Config{EnableTwoBatchOverlap: true}, ClassCrash, PhaseArgs, "moe-a2a-backend"},
		{"two-batch overlap on dense with a2a", "H100", 1, m8, Config{EnableTwoBatchOverlap: true, MoEA2ABackend: "deepep"}, ClassCrash, PhaseLoad, "MoE"},
		{"trtllm_mha on Hopper", "H100", 1, m8, Config{AttentionBackend: "trtllm_mha"}, ClassCrash, PhaseArgs, "Blackwell"},
		{"flashmla on dense", "H100", 1, m8, Config{AttentionBackend: "flashmla"}, ClassCrash, PhaseAttention, "MLA"},
		{"dp attention tp not divisible", "H100", 8, dsv2, Config{TP: 2, DP: 4, EnableDPAttention: true}, ClassCrash, PhaseArgs, "divisible by dp_size"},
		{"pp with mixed chunk", "H100", 2, m8, Config{PP: 2, EnableMixedChunk: true}, ClassCrash, PhaseArgs, "Pipeline parallelism"},
		{"graph capture OOM", "H100", 1, m8, Config{MemFractionStatic: 0.99, CudaGraphMaxBS: 512}, ClassOOM, PhaseGraph, "Capture cuda graph failed"},
		{"zero tp", "H100", 1, m8, Config{TP: -1}, ClassCrash, PhaseArgs, "tp_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPlan(tt.cfg, mustGPU(t, tt.gpu, tt.gpus), tt.model)
			var le *LaunchError
			if !errors.As(err, &le) {
				t.Fatalf("want *LaunchError, got %v", err)
			}
			if le.Class != tt.expectedClass || le.Phase != tt.expectedPhase || !strings.Contains(le.Error(), tt.expectedText) {
				t.Fatalf("got class %s phase %s %q", le.Class, le.Phase, le.Error())
			}
		})
	}
}

func TestEvaluate_tradeoffs(t *testing.T) {
	hw, m := mustGPU(t, "H100", 8), mustModel(t, "llama-3.1-8b")
	evalN := func(cfg Config, conc, n int) Result {
		t.Helper()
		r, err := Evaluate(cfg, hw, m, Workload{NumPrompts: n, InputLen: 1024, OutputLen: 512, RangeRatio: 0.5, MaxConcurrency: conc, Seed: 7})
		if err != nil {
			t.Fatalf("Evaluate(%+v): %v", cfg, err)
		}
		if r.Completed != n || r.OutputThroughput <= 0 || r.MeanTTFTMs <= 0 || r.MeanTPOTMs <= 0 {
			t.Fatalf("degenerate result %+v", r)
		}
		return r
	}
	eval := func(cfg Config, conc int) Result { return evalN(cfg, conc, 300) }
	low, high := eval(Config{}, 8), eval(Config{}, 128)
	if high.OutputThroughput <= low.OutputThroughput*2 || high.MeanTTFTMs <= low.MeanTTFTMs || high.MeanTPOTMs <= low.MeanTPOTMs {
		t.Fatalf("concurrency 8 -> 128: tps %.0f -> %.0f, ttft %.1f -> %.1f, tpot %.2f -> %.2f",
			low.OutputThroughput, high.OutputThroughput, low.MeanTTFTMs, high.MeanTTFTMs, low.MeanTPOTMs, high.MeanTPOTMs)
	}
	// DP scales throughput near-linearly when each replica gets the same load.
	dp1, dp2, dp4 := evalN(Config{}, 64, 400), evalN(Config{DP: 2}, 128, 800), evalN(Config{DP: 4}, 256, 1600)
	if dp2.OutputThroughput < 1.8*dp1.OutputThroughput || dp4.OutputThroughput < 1.8*dp2.OutputThroughput {
		t.Fatalf("DP does not scale: %.0f, %.0f, %.0f tok/s", dp1.OutputThroughput, dp2.OutputThroughput, dp4.OutputThroughput)
	}
	tp1, tp4 := eval(Config{}, 16), eval(Config{TP: 4}, 16)
	if tp4.MeanTPOTMs >= tp1.MeanTPOTMs/2 || tp4.MeanTTFTMs >= tp1.MeanTTFTMs {
		t.Fatalf("TP4 latency: tpot %.2f vs %.2f, ttft %.1f vs %.1f", tp4.MeanTPOTMs, tp1.MeanTPOTMs, tp4.MeanTTFTMs, tp1.MeanTTFTMs)
	}
	if tn := eval(Config{AttentionBackend: "torch_native"}, 64); tn.OutputThroughput >= eval(Config{}, 64).OutputThroughput*0.7 {
		t.Fatalf("torch_native not slow: %.0f tok/s", tn.OutputThroughput)
	}
	if ng := eval(Config{DisableCudaGraph: true}, 16); ng.MeanTPOTMs <= tp1.MeanTPOTMs {
		t.Fatalf("no cuda graph tpot %.2f <= %.2f", ng.MeanTPOTMs, tp1.MeanTPOTMs)
	}
}

func TestEvaluate_deterministic(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	w := Workload{NumPrompts: 200, InputLen: 512, OutputLen: 256, RangeRatio: 0.5, RequestRate: 20, Seed: 3}
	a, err := Evaluate(Config{}, hw, m, w)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Evaluate(Config{}, hw, m, w)
	if a.MeanTTFTMs != b.MeanTTFTMs || a.OutputThroughput != b.OutputThroughput {
		t.Fatal("Evaluate is not deterministic")
	}
	// Open loop at 20 req/s: throughput follows the arrival rate.
	if a.RequestThroughput < 15 || a.RequestThroughput > 25 {
		t.Fatalf("request throughput %.1f at 20 req/s", a.RequestThroughput)
	}
}

func TestEvaluate_runtimeOOM(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	cfg := Config{MemFractionStatic: 0.96, ChunkedPrefillSize: 32768, MaxPrefillTokens: 32768, CudaGraphMaxBS: 64}
	_, err := Evaluate(cfg, hw, m, Workload{NumPrompts: 100, InputLen: 4096, OutputLen: 64, RangeRatio: 1, Seed: 1})
	var le *LaunchError
	if !errors.As(err, &le) || le.Class != ClassOOM || le.Phase != PhaseRuntime {
		t.Fatalf("want runtime OOM, got %v", err)
	}
}

func TestEngine_kvLimitsBatch(t *testing.T) {
	hw, m := mustGPU(t, "H100", 1), mustModel(t, "llama-3.1-8b")
	p := mustPlan(t, Config{MaxTotalTokens: 20000}, hw, m)
	e := NewEngine(p, 1)
	for i := range 100 {
		e.Add(&Req{ID: int64(i), InputLen: 1000, MaxNewTokens: 1000})
	}
	maxRunning := 0
	for range 5000 {
		it, ok := e.Next(1, 0)
		if !ok {
			break
		}
		maxRunning = max(maxRunning, len(e.Running()))
		if e.KVUsed() > p.MaxTotalTokens {
			t.Fatalf("KV used %d > capacity %d", e.KVUsed(), p.MaxTotalTokens)
		}
		_ = it
	}
	if maxRunning > 20 || maxRunning < 5 {
		t.Fatalf("max running %d with 20k KV tokens and 1-2k-token requests", maxRunning)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	hw, _ := GPUPreset("H100")
	m, _ := ModelPreset("llama-3.1-8b")
	w := Workload{NumPrompts: 1000, InputLen: 1024, OutputLen: 1024, RangeRatio: 0.5, MaxConcurrency: 256, Seed: 1}
	for b.Loop() {
		if _, err := Evaluate(Config{}, hw, m, w); err != nil {
			b.Fatal(err)
		}
	}
}
