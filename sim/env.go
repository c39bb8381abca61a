package sim

import (
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/sim/model"
)

// Fault names accepted in SGTUNE_SIM_FAULT.
const (
	// FaultCrashAtStart: print a traceback during startup and exit 1.
	FaultCrashAtStart = "crash-at-start"
	// FaultSlowStart: startup takes SGTUNE_SIM_FAULT_SECONDS (real seconds).
	FaultSlowStart = "slow-start"
	// FaultOOMUnderLoad: at the SGTUNE_SIM_FAULT_AFTER-th request, print
	// torch.OutOfMemoryError and exit 1.
	FaultOOMUnderLoad = "oom-under-load"
	// FaultHangDuringBench: from the SGTUNE_SIM_FAULT_AFTER-th request on,
	// stop producing tokens; connections stay open and never finish.
	FaultHangDuringBench = "hang-during-bench"
	// FaultIgnoreSIGTERM: ignore SIGTERM; only SIGKILL stops the process.
	FaultIgnoreSIGTERM = "ignore-sigterm"
	// FaultNeverHealthy: /health and /health_generate always answer 503.
	FaultNeverHealthy = "never-healthy"
)

var faults = []string{FaultCrashAtStart, FaultSlowStart, FaultOOMUnderLoad, FaultHangDuringBench, FaultIgnoreSIGTERM, FaultNeverHealthy}

// Environment variables read by Run.
const (
	EnvGPU          = "SGTUNE_SIM_GPU"
	EnvModel        = "SGTUNE_SIM_MODEL"
	EnvTimeScale    = "SGTUNE_SIM_TIME_SCALE"
	EnvNoise        = "SGTUNE_SIM_NOISE"
	EnvSeed         = "SGTUNE_SIM_SEED"
	EnvFault        = "SGTUNE_SIM_FAULT"
	EnvFaultAfter   = "SGTUNE_SIM_FAULT_AFTER"
	EnvFaultSeconds = "SGTUNE_SIM_FAULT_SECONDS"
	EnvCUDADevices  = "CUDA_VISIBLE_DEVICES"
)

// simEnv holds the simulator's non-SGLang knobs.
type simEnv struct {
	hw           model.Hardware
	modelName    string
	timeScale    float64
	noise        float64
	seed         uint64
	seedSet      bool
	fault        string
	faultAfter   int
	faultSeconds float64
}

func loadEnv(getenv func(string) string) (simEnv, error) {
	e := simEnv{timeScale: 1, noise: 0.03, faultAfter: 5, faultSeconds: 30}
	bad := func(name, val, why string) error {
		return usageErrorf("%s=%q: %s", name, val, why)
	}
	gpu := getenv(EnvGPU)
	hw, ok := model.GPUPreset(gpu)
	if !ok {
		return e, bad(EnvGPU, gpu, "unknown GPU (known: "+strings.Join(model.GPUPresetNames(), ", ")+")")
	}
	e.hw = hw
	e.hw.NumGPUs = countDevices(getenv(EnvCUDADevices))
	if v := getenv(EnvModel); v != "" {
		if _, ok := model.ModelPreset(v); !ok {
			return e, bad(EnvModel, v, "unknown model preset (known: "+strings.Join(model.ModelPresetNames(), ", ")+")")
		}
		e.modelName = v
	}
	floatVar := func(name string, dst *float64) error {
		if v := getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return bad(name, v, "want a non-negative number")
			}
			*dst = f
		}
		return nil
	}
	for _, f := range []struct {
		name string
		dst  *float64
	}{{EnvTimeScale, &e.timeScale}, {EnvNoise, &e.noise}, {EnvFaultSeconds, &e.faultSeconds}} {
		if err := floatVar(f.name, f.dst); err != nil {
			return e, err
		}
	}
	if v := getenv(EnvSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return e, bad(EnvSeed, v, "want an unsigned integer")
		}
		e.seed, e.seedSet = n, true
	}
	if v := getenv(EnvFaultAfter); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return e, bad(EnvFaultAfter, v, "want a positive integer")
		}
		e.faultAfter = n
	}
	if v := getenv(EnvFault); v != "" {
		known := false
		for _, f := range faults {
			known = known || f == v
		}
		if !known {
			return e, bad(EnvFault, v, "unknown fault (known: "+strings.Join(faults, ", ")+")")
		}
		e.fault = v
	}
	return e, nil
}

// countDevices counts the entries of CUDA_VISIBLE_DEVICES; unset means one GPU.
func countDevices(v string) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 1
	}
	n := 0
	for _, d := range strings.Split(v, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		// CUDA stops at the first invalid (negative) ordinal.
		if i, err := strconv.Atoi(d); err == nil && i < 0 {
			break
		}
		n++
	}
	return n
}
