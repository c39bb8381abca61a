#!/usr/bin/env bash
# gpu-check.sh: check sgtune's NVML path on a GPU host in a few minutes.
#
# 1. Build sgtune with go-nvml (CGO_ENABLED=1, -tags nvml) here; a host
#    without Go or without the module cache (no network) uses a binary built
#    elsewhere with `make build-nvml` and passed as SGTUNE_NVML_BIN (default
#    bin/sgtune-nvml).
# 2. `sgtune gpus --json`: the inventory as the runner sees it.
# 3. NVML readings over a few seconds idle, then under a GPU load (bf16
#    matrix products through PyTorch when it is installed; without it only
#    the idle readings are taken), beside nvidia-smi's readings of the same
#    period as a cross-check: power, utilisation, peak memory and the energy
#    counter's difference, the figures a trial reports.
# 4. The NVML device test (SGTUNE_NVML_DEVICE_TEST=1) when its test binary
#    is there (bin/gpu-nvml.test, from `go test -c -tags nvml`).
#
# Everything goes to $OUT (default: a new temporary directory):
# gpu-check.log, gpus.json, idle.json, load.json, nvidia-smi.csv, load.txt.
# Usage: OUT=/tmp/x scripts/gpu-check.sh [idle-seconds] [load-seconds]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
IDLE=${1:-5}
LOAD=${2:-20}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1

step() { printf '\n== %s\n' "$*"; }

step "host"
uname -srm
nvidia-smi -L || { echo "nvidia-smi failed: no GPU driver here"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv

step "build sgtune with -tags nvml"
BIN=""
if command -v go >/dev/null 2>&1; then
	go version
	if CGO_ENABLED=1 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off timeout 150 \
		go build -tags nvml -trimpath -o /tmp/sgtune-nvml ./cmd/sgtune; then
		BIN=/tmp/sgtune-nvml
		echo "built here: $BIN"
	else
		echo "could not build here (no module cache without network?)"
	fi
else
	echo "no Go toolchain here"
fi
if [ -z "$BIN" ]; then
	BIN=${SGTUNE_NVML_BIN:-bin/sgtune-nvml}
	[ -x "$BIN" ] || { echo "no nvml binary: build one with 'make build-nvml' and carry it"; exit 1; }
	echo "using the binary built elsewhere: $BIN"
fi

step "sgtune gpus --json"
"$BIN" gpus --json | tee "$OUT/gpus.json" || exit 1
"$BIN" gpus

step "NVML readings, idle for ${IDLE}s"
"$BIN" gpus --json --watch "${IDLE}s" > "$OUT/idle.json" && "$BIN" gpus --watch 1s | tail -1
cat "$OUT/idle.json"; echo

step "NVML readings under a GPU load for ${LOAD}s"
PY=""
for p in python3 /opt/torch/.venv/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
	echo "no PyTorch with CUDA here: no GPU load, idle readings only"
else
	# Matrix products for LOAD+4 s: the watch starts 2 s in and stops 2 s before the end.
	"$PY" - "$((LOAD + 4))" > "$OUT/load.txt" 2>&1 <<'PYEOF' &
import sys, time, torch
secs = float(sys.argv[1])
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn_like(a)
torch.cuda.synchronize()
n, t0 = 0, time.time()
while time.time() - t0 < secs:
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    n += 20
dt = time.time() - t0
print(f"{n} bf16 8192^3 matmuls in {dt:.1f}s: {n * 2 * 8192**3 / dt / 1e12:.0f} TFLOP/s")
PYEOF
	LOADPID=$!
	sleep 2
	nvidia-smi --query-gpu=timestamp,power.draw,utilization.gpu,memory.used --format=csv -lms 1000 > "$OUT/nvidia-smi.csv" &
	SMIPID=$!
	"$BIN" gpus --json --watch "${LOAD}s" > "$OUT/load.json"
	kill "$SMIPID" 2>/dev/null
	wait "$LOADPID"
	cat "$OUT/load.json"; echo
	cat "$OUT/load.txt"
	echo "nvidia-smi during the load (1 s samples):"
	awk -F', ' 'NR>1 {gsub(/ W/,"",$2); gsub(/ %/,"",$3); p+=$2; u+=$3; n++} END {if (n) printf "mean power %.0f W, mean utilisation %.0f%% over %d samples\n", p/n, u/n, n}' "$OUT/nvidia-smi.csv"
fi

step "NVML device test"
if [ -x bin/gpu-nvml.test ]; then
	SGTUNE_NVML_DEVICE_TEST=1 bin/gpu-nvml.test -test.v -test.run 'NVML'
else
	echo "bin/gpu-nvml.test not present (go test -c -tags nvml ./services/runner/internal/gpu)"
fi
step "done: outputs in $OUT"
