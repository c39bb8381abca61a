package rules

import (
	"fmt"
	"strings"
)

// hardwareRules judge a candidate against the live fleet (the runners' GPU
// inventories). With no fleet information they all pass: the adapter waits for a
// live runner instead of calling them with an empty fleet. A candidate passes a
// rule when at least one host has enough GPUs, as many as the config needs,
// that satisfy it.
func hardwareRules() []Rule {
	return []Rule{
		{
			ID: "hardware.gpu_count", Set: SetHardware, Source: srcServerArgs + " (R-G1); fleet inventory (sgtune_fleet)",
			Summary: "The GPUs the config needs must fit on one live runner host.",
			Check: func(in Input) *Violation {
				if len(in.Fleet) == 0 {
					return nil
				}
				n, how := in.gpus()
				if in.maxUsable() >= n {
					return nil
				}
				return violation(how, ", but no live host can give one trial more than ", itoa(in.maxUsable()), " (", in.fleetNote(), ").")
			},
		},
		ccRule("hardware.fa3_compute_capability", srcBackends+" (R-A1)",
			"fa3 needs compute capability 9.x (Hopper), or 8.x for non-MLA models.",
			func(in Input) (string, bool) {
				f, _, ok := in.usesBackend("fa3")
				if !ok {
					return "", false
				}
				if in.Model.MLA {
					return f + " = fa3 needs compute capability 9.x for an MLA model", true
				}
				return f + " = fa3 needs compute capability 8.x or 9.x", true
			},
			func(in Input, g GPU) bool { return g.CCMajor == 9 || (g.CCMajor == 8 && !in.Model.MLA) }),
		ccRule("hardware.fa4_compute_capability", srcBackends+" (R-A2)",
			"fa4 needs compute capability 10.x (Blackwell) on SGLang releases, 9.x or 10.x on main.",
			func(in Input) (string, bool) {
				f, _, ok := in.usesBackend("fa4")
				if !ok {
					return "", false
				}
				if in.mainBranch() {
					return f + " = fa4 needs compute capability 9.x or 10.x", true
				}
				return f + " = fa4 needs compute capability 10.x (Blackwell) on SGLang " + versionName(in), true
			},
			func(in Input, g GPU) bool { return g.CCMajor == 10 || (in.mainBranch() && g.CCMajor == 9) }),
		ccRule("hardware.fa4_page_size", srcServerArgs+" (R-PG3, main only)",
			"On SGLang main, fa4 with a non-MLA model on compute capability 9.x needs page_size 128.",
			func(in Input) (string, bool) {
				f, _, ok := in.usesBackend("fa4")
				page, _ := in.intSet("page_size")
				if !ok || !in.mainBranch() || in.Model.MLA || page == 128 {
					return "", false
				}
				return f + " = fa4 with page_size = " + fmtVal(in.value("page_size")) + " needs a GPU other than compute capability 9.x, where SGLang requires page_size = 128 for non-MLA models", true
			},
			func(in Input, g GPU) bool { return g.CCMajor != 9 }),
		ccRule("hardware.trtllm_mha_compute_capability", srcBackends+" (R-A3)",
			"trtllm_mha needs compute capability 10.x on SGLang releases; 9.x, 10.x or 12.x on main.",
			func(in Input) (string, bool) {
				f, _, ok := in.usesBackend("trtllm_mha")
				if !ok {
					return "", false
				}
				if in.mainBranch() {
					return f + " = trtllm_mha needs compute capability 9.x, 10.x or 12.x", true
				}
				return f + " = trtllm_mha needs compute capability 10.x on SGLang " + versionName(in), true
			},
			func(in Input, g GPU) bool {
				return g.CCMajor == 10 || (in.mainBranch() && (g.CCMajor == 9 || g.CCMajor == 12))
			}),
		ccRule("hardware.mla_backend_compute_capability", srcBackends+" (R-A4)",
			"trtllm_mla, cutlass_mla, cutedsl_mla and tokenspeed_mla need Blackwell (10.x); flashmla needs Hopper (9.x).",
			func(in Input) (string, bool) {
				if f, b, ok := in.usesBackend("trtllm_mla", "cutlass_mla", "cutedsl_mla", "tokenspeed_mla"); ok {
					return f + " = " + b + " needs compute capability 10.x (Blackwell)", true
				}
				if f, b, ok := in.usesBackend("flashmla"); ok {
					return f + " = " + b + " needs compute capability 9.x (Hopper)", true
				}
				return "", false
			},
			func(in Input, g GPU) bool {
				if _, _, ok := in.usesBackend("trtllm_mla", "cutlass_mla", "cutedsl_mla", "tokenspeed_mla"); ok && g.CCMajor != 10 {
					return false
				}
				if _, _, ok := in.usesBackend("flashmla"); ok && g.CCMajor != 9 {
					return false
				}
				return true
			}),
		ccRule("hardware.platform_backend", srcBackends+" (R-A5)",
			"aiter and wave need AMD ROCm, intel_amx a CPU, ascend a Huawei NPU, intel_xpu an Intel GPU: none runs on NVIDIA GPUs.",
			func(in Input) (string, bool) {
				if f, b, ok := in.usesBackend("aiter", "wave", "intel_amx", "ascend", "intel_xpu"); ok {
					return f + " = " + b + " is a backend for another platform and does not run on NVIDIA GPUs", true
				}
				return "", false
			},
			func(in Input, g GPU) bool { return !isNVIDIA(g) }),
		ccRule("hardware.cuda_only_backend", srcBackends+" (R-T3, A.2)",
			"flashinfer (attention or sampling), fa3, fa4, flashmla, the trtllm/cutlass/cutedsl/tokenspeed kernels and hpc_ops need NVIDIA CUDA GPUs.",
			func(in Input) (string, bool) {
				if f, b, ok := in.usesBackend(cudaOnlyBackends...); ok {
					return f + " = " + b + " is a CUDA kernel and needs NVIDIA GPUs", true
				}
				if in.str("sampling_backend") == "flashinfer" {
					return "sampling_backend = flashinfer needs the flashinfer package, which exists only for NVIDIA GPUs", true
				}
				return "", false
			},
			func(in Input, g GPU) bool { return isNVIDIA(g) }),
		{
			ID: "hardware.weights_fit", Set: SetHardware, Source: "SGLang python/sglang/srt/model_executor/model_runner.py KV-pool profiling (R-G4)",
			Summary: "The model's weights per GPU (params × bytes / (tp_size × pp_size)) must leave room for a KV pool within mem_fraction_static of one GPU (known presets only).",
			Check:   checkWeightsFit,
		},
	}
}

// ccRule builds a hardware rule: need says whether the rule applies and
// describes the requirement; gpuOK says whether one GPU meets it.
// A GPU whose compute capability is unknown passes, unless judgeUnknown
// (the platform rules, which judge by the GPU's name instead).
func ccRule(id, source, summary string, need func(Input) (string, bool), gpuOK func(Input, GPU) bool) Rule {
	judgeUnknown := id == "hardware.platform_backend" || id == "hardware.cuda_only_backend"
	return Rule{
		ID: id, Set: SetHardware, Source: source, Summary: summary,
		Check: func(in Input) *Violation {
			if len(in.Fleet) == 0 {
				return nil
			}
			what, applies := need(in)
			if !applies {
				return nil
			}
			n, _ := in.gpus()
			if in.maxUsable() < n {
				return nil // hardware.gpu_count reports it
			}
			for _, h := range in.Fleet {
				ok := 0
				for _, g := range h.GPUs {
					if g.CCMajor == 0 && !judgeUnknown || gpuOK(in, g) {
						ok++ // unknown compute capability: cannot judge, assume it fits
					}
				}
				if min(ok, in.usable(h)) >= n {
					return nil
				}
			}
			such := itoa(n) + " such GPUs"
			if n == 1 {
				such = "such a GPU"
			}
			return violation(what, ", but no live host has ", such, " (", in.fleetNote(), ").")
		},
	}
}

// bytesPerParam is the weight size for a quantization method; ok is false when unknown.
func bytesPerParam(quant string) (float64, bool) {
	switch strings.ToLower(quant) {
	case "":
		return 2, true
	case "fp8", "w8a8_fp8", "w8a8_int8", "modelopt_fp8", "fbgemm_fp8", "compressed-tensors":
		return 1, true
	case "awq", "awq_marlin", "gptq", "gptq_marlin", "marlin", "modelopt_fp4", "w4afp8", "mxfp4":
		return 0.5, true
	}
	return 0, false
}

// headroom is the share of the static memory pool the weights may take; the
// rest must hold at least some KV cache.
const headroom = 0.9

func checkWeightsFit(in Input) *Violation {
	if len(in.Fleet) == 0 || !in.Model.Known() || in.Model.ParamsB <= 0 {
		return nil
	}
	bpp, ok := bytesPerParam(in.str("quantization"))
	if !ok {
		return nil
	}
	n, _ := in.gpus()
	if in.maxUsable() < n {
		return nil
	}
	frac := 0.9
	if f, ok := in.value("mem_fraction_static").(float64); ok && f > 0 {
		frac = f
	}
	shards := in.size("tp_size") * in.size("pp_size")
	perGPU := in.Model.ParamsB * 1e9 * bpp / float64(max(shards, 1))
	for _, h := range in.Fleet {
		fit := 0
		for _, g := range h.GPUs {
			if g.MemoryBytes == 0 || perGPU <= headroom*frac*float64(g.MemoryBytes) {
				fit++
			}
		}
		if min(fit, in.usable(h)) >= n {
			return nil
		}
	}
	return violation(fmt.Sprintf("%s needs about %.1f GB of weights per GPU with tp_size × pp_size = %d, more than %.0f%% of mem_fraction_static %.2f of the GPU memory of any live host (%s), leaving no room for the KV cache.",
		in.Model.Name, perGPU/1e9, shards, headroom*100, frac, in.fleetNote()))
}

// usable is how many of h's GPUs one trial may use: all of them, capped at
// device_num when it is set (the seed's --device-num).
func (in Input) usable(h Host) int {
	n := len(h.GPUs)
	if in.DeviceNum > 0 {
		n = min(n, in.DeviceNum)
	}
	return n
}

// maxUsable is the most GPUs one trial may use on any live host.
func (in Input) maxUsable() int {
	m := 0
	for _, h := range in.Fleet {
		m = max(m, in.usable(h))
	}
	return m
}

// fleetNote names the hosts considered, and the device_num cap when it binds.
func (in Input) fleetNote() string {
	note := "hosts considered: " + describeFleet(in.Fleet)
	for _, h := range in.Fleet {
		if in.usable(h) < len(h.GPUs) {
			return note + "; device_num caps each host at " + itoa(in.DeviceNum) + " GPUs"
		}
	}
	return note
}

// cudaOnlyBackends are attention backends built on CUDA kernels (sglang.md §A.2).
var cudaOnlyBackends = []string{"flashinfer", "fa3", "fa4", "flashmla", "cutlass_mla", "trtllm_mha", "trtllm_mla",
	"cutedsl_mla", "tokenspeed_mla", "hpc_ops"}

// isNVIDIA reports whether g is an NVIDIA GPU: it has a CUDA compute
// capability (NVML reports one for every NVIDIA GPU) or NVIDIA's name.
func isNVIDIA(g GPU) bool {
	return g.CCMajor > 0 || strings.Contains(strings.ToUpper(g.Name), "NVIDIA")
}
