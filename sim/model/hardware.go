package model

import (
	"sort"
	"strings"
)

// Hardware is the GPU the simulator pretends to be, and how many of them the
// server may use. Figures are public datasheet values (dense, no sparsity).
type Hardware struct {
	// Name is the preset name ("H100", "A100-80G", ...).
	Name string
	// MarketingName is what torch.cuda.get_device_name would print.
	MarketingName string
	// MemoryGB is the per-GPU memory SGLang detects, in GiB.
	MemoryGB float64
	// HBMTBps is the peak memory bandwidth in TB/s.
	HBMTBps float64
	// BF16TFLOPS is the dense bf16 tensor-core peak in TFLOPS.
	BF16TFLOPS float64
	// FP8TFLOPS is the dense fp8 peak; 0 when the GPU has no fp8 tensor cores.
	FP8TFLOPS float64
	// SMMajor and SMMinor are the CUDA compute capability (9.0 for Hopper).
	SMMajor, SMMinor int
	// LinkGBps is the per-direction GPU-to-GPU bandwidth an all-reduce sees
	// (NVLink on SXM parts, PCIe otherwise).
	LinkGBps float64
	// AllReduceLatencyUs is the fixed cost of one small all-reduce.
	AllReduceLatencyUs float64
	// NumGPUs is how many such GPUs the server may use (CUDA_VISIBLE_DEVICES).
	NumGPUs int
}

// SM returns the compute capability as one number (90 for 9.0).
func (h Hardware) SM() int { return h.SMMajor*10 + h.SMMinor }

// Hopper reports compute capability 9.x.
func (h Hardware) Hopper() bool { return h.SMMajor == 9 }

// Blackwell reports compute capability 10.x or 12.x.
func (h Hardware) Blackwell() bool { return h.SMMajor == 10 || h.SMMajor == 12 }

var gpuPresets = map[string]Hardware{
	"H100": {Name: "H100", MarketingName: "NVIDIA H100 80GB HBM3", MemoryGB: 79.1, HBMTBps: 3.35,
		BF16TFLOPS: 989, FP8TFLOPS: 1979, SMMajor: 9, LinkGBps: 450, AllReduceLatencyUs: 8},
	"H200": {Name: "H200", MarketingName: "NVIDIA H200", MemoryGB: 139.8, HBMTBps: 4.8,
		BF16TFLOPS: 989, FP8TFLOPS: 1979, SMMajor: 9, LinkGBps: 450, AllReduceLatencyUs: 8},
	"A100-80G": {Name: "A100-80G", MarketingName: "NVIDIA A100-SXM4-80GB", MemoryGB: 79.2, HBMTBps: 2.04,
		BF16TFLOPS: 312, SMMajor: 8, LinkGBps: 300, AllReduceLatencyUs: 10},
	"A100-40G": {Name: "A100-40G", MarketingName: "NVIDIA A100-SXM4-40GB", MemoryGB: 39.4, HBMTBps: 1.56,
		BF16TFLOPS: 312, SMMajor: 8, LinkGBps: 300, AllReduceLatencyUs: 10},
	"L40S": {Name: "L40S", MarketingName: "NVIDIA L40S", MemoryGB: 44.5, HBMTBps: 0.864,
		BF16TFLOPS: 362, FP8TFLOPS: 733, SMMajor: 8, SMMinor: 9, LinkGBps: 25, AllReduceLatencyUs: 25},
	"A10": {Name: "A10", MarketingName: "NVIDIA A10", MemoryGB: 22.1, HBMTBps: 0.6,
		BF16TFLOPS: 125, SMMajor: 8, SMMinor: 6, LinkGBps: 25, AllReduceLatencyUs: 25},
	"B200": {Name: "B200", MarketingName: "NVIDIA B200", MemoryGB: 178.4, HBMTBps: 8.0,
		BF16TFLOPS: 2250, FP8TFLOPS: 4500, SMMajor: 10, LinkGBps: 900, AllReduceLatencyUs: 6},
}

// GPUPreset returns the named GPU (case-insensitive; "H100-80G", "A100" and
// "A100-80GB" style spellings are accepted) with NumGPUs set to 1.
func GPUPreset(name string) (Hardware, bool) {
	key := strings.ToUpper(strings.TrimSpace(name))
	key = strings.TrimSuffix(key, "B") // A100-80GB -> A100-80G
	switch key {
	case "", "H100-80G", "H100-SXM":
		key = "H100"
	case "A100":
		key = "A100-80G"
	case "H200-141G":
		key = "H200"
	}
	h, ok := gpuPresets[key]
	if !ok {
		return Hardware{}, false
	}
	h.NumGPUs = 1
	return h, true
}

// GPUPresetNames lists the GPU presets, sorted.
func GPUPresetNames() []string {
	names := make([]string, 0, len(gpuPresets))
	for n := range gpuPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
