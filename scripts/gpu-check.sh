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

step "GPU numbering: NVML index, PCI bus order, and what CUDA_DEVICE_ORDER=PCI_BUS_ID gives a server"
# sgtune starts every server with CUDA_DEVICE_ORDER=PCI_BUS_ID and CUDA_VISIBLE_DEVICES=<NVML index>:
# CUDA's device 0 must then be the GPU with that NVML index (same UUID), on every GPU.
nvidia-smi --query-gpu=index,uuid,pci.bus_id,name --format=csv,noheader | tee "$OUT/nvidia-smi-gpus.csv"
if [ -n "$PY" ]; then
	ok=1
	while IFS=', ' read -r idx uuid _; do
		got=$(CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=$idx "$PY" -c 'import torch; print("GPU-" + str(torch.cuda.get_device_properties(0).uuid))' 2>/dev/null)
		def=$(CUDA_VISIBLE_DEVICES=$idx "$PY" -c 'import torch; print("GPU-" + str(torch.cuda.get_device_properties(0).uuid))' 2>/dev/null)
		echo "NVML index $idx = $uuid; CUDA with PCI_BUS_ID: $got; CUDA default order: $def"
		[ "$got" = "$uuid" ] || ok=0
	done < "$OUT/nvidia-smi-gpus.csv"
	[ $ok = 1 ] && echo "CUDA_DEVICE_ORDER=PCI_BUS_ID: every index is the GPU NVML names" || echo "MISMATCH: a server would run on another GPU than reserved"
else
	echo "no PyTorch with CUDA: CUDA's numbering not checked"
fi

step "GPU hygiene: a GPU busy before the runner starts is quarantined, with the reason"
if [ -n "$PY" ] && command -v timeout >/dev/null 2>&1; then
	"$PY" -c 'import torch, time; x = torch.empty(4 << 30, dtype=torch.uint8, device="cuda"); time.sleep(60)' &
	HOLDPID=$!
	sleep 8
	"$BIN" gpus --json | tee "$OUT/gpus-busy.json"; echo
	# A runner against an unreachable NATS still reads and judges its GPUs first.
	timeout 20 "$BIN" runner --nats-url nats://127.0.0.1:1 --log-level warn 2>&1 | grep -m1 -i "quarantined" || echo "(no quarantine line within 20 s)"
	kill "$HOLDPID" 2>/dev/null; wait "$HOLDPID" 2>/dev/null
else
	echo "no PyTorch with CUDA: not checked"
fi

step "NVML device test"
if [ -x bin/gpu-nvml.test ]; then
	SGTUNE_NVML_DEVICE_TEST=1 bin/gpu-nvml.test -test.v -test.run 'NVML'
else
	echo "bin/gpu-nvml.test not present (go test -c -tags nvml ./services/runner/internal/gpu)"
fi
step "done: outputs in $OUT"
