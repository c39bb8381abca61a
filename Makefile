# sgtune — every task a developer or CI runs. Needs only Go, make (and Docker for images/compose).
SHELL := /bin/bash
export GOTOOLCHAIN := local
export CGO_ENABLED ?= 0

GO       ?= go
BIN      := bin
MODULES  := $(shell find . -name go.mod -not -path './.tools/*' -not -path './bin/*' -exec dirname {} \; | sort)
PKGS     := $(addsuffix /...,$(MODULES))
TESTFLAGS ?= -count=1 -timeout 15m
SPEC     ?= deploy/specs/quickstart.yaml
N_TRIALS ?= 40
RUNNERS  ?= 2
# make run simulates a host of SIM_GPUS GPUs, split between the RUNNERS.
SIM_GPUS ?= 8
# sgtune --version reports it.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
# make run's simulated servers start in about a second: short bounds, so a
# hung one costs seconds (the shipped specs' own timeouts fit a real model load).
SIM_STARTUP_TIMEOUT   ?= 60s
SIM_BENCHMARK_TIMEOUT ?= 60s

.DEFAULT_GOAL := all

# Fragments owned by their modules (runner and sampler benchmarks, compose);
# a fragment adds its benchmark to BENCH_TARGETS.
BENCH_TARGETS :=
-include services/runner/bench.mk
-include services/sampler/bench.mk
-include deploy/compose.mk

.PHONY: all build build-nvml build-static fakenvml test-fake-nvml run run-capacity test test-deps test-race lint vet fmt check-imports verify-modules tidy bench bench-controlplane bench-durability e2e-faults clean help

all: lint test build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# NVML: go-nvml needs cgo; the binary dlopens libnvidia-ml.so.1 at run time, so it
# also runs where there is no driver (it then sees no GPUs and says so).
NVML_CGO_CFLAGS := -O2 -g -Wno-deprecated-declarations
FAKENVML        := $(BIN)/fakenvml/libnvidia-ml.so.1

build: ## build bin/sgtune: with NVML (cgo, -tags nvml) where a C compiler is present, else pure Go (it says so)
	@if command -v $(CC) >/dev/null 2>&1; then \
		echo "CGO_ENABLED=1 $(GO) build -tags nvml -o $(BIN)/sgtune ./cmd/sgtune"; \
		CGO_ENABLED=1 CGO_CFLAGS="$(NVML_CGO_CFLAGS)" $(GO) build -tags nvml -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune ./cmd/sgtune; \
	else \
		echo "make build: no C compiler ($(CC)): bin/sgtune is built WITHOUT NVML; it cannot see GPUs (only --sim or --gpus N runs)"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune ./cmd/sgtune; \
	fi

build-nvml: ## build bin/sgtune with go-nvml (cgo); fails without a C compiler
	CGO_ENABLED=1 CGO_CFLAGS="$(NVML_CGO_CFLAGS)" $(GO) build -tags nvml -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune ./cmd/sgtune

build-static: ## build bin/sgtune-static: pure Go (CGO_ENABLED=0), no NVML, for scratch images
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune-static ./cmd/sgtune

fakenvml: $(FAKENVML) ## build the fake NVML driver (bin/fakenvml/libnvidia-ml.so.1) for tests without a GPU

$(FAKENVML): sim/fakenvml/fakenvml.c
	@mkdir -p $(dir $@)
	$(CC) -shared -fPIC -O2 -Wall -Wextra -o $@ $<

test-fake-nvml: ## e2e: an NVML-enabled `sgtune up --runners 2` on a 4-GPU fake NVML host (disjoint GPUs, quarantine, NVML gone)
	@bash scripts/need-cc.sh
	$(MAKE) --no-print-directory build-nvml fakenvml
	SGTUNE_NVML_BIN=$(abspath $(BIN)/sgtune) SGTUNE_FAKE_NVML_LIB=$(abspath $(dir $(FAKENVML))) \
		$(GO) test -tags fakenvml -count=1 -timeout 15m -run FakeNVML -v ./e2e/

run: build ## run a whole simulated study on the embedded NATS (about a minute)
	@# A fresh demo every time: its own data dir is removed (no --no-load, which
	@# says what it deletes from a store that may hold other studies).
	rm -rf .sgtune/quickstart
	$(BIN)/sgtune up --sim --gpus $(SIM_GPUS) --spec $(SPEC) --n-trials $(N_TRIALS) --runners $(RUNNERS) \
		--startup-timeout $(SIM_STARTUP_TIMEOUT) --benchmark-timeout $(SIM_BENCHMARK_TIMEOUT) \
		--data-dir .sgtune/quickstart --output results.json

run-capacity: build ## capacity per GPU under p99 TTFT/TPOT SLOs on the simulator (about a minute): the front with each member's capacity
	rm -rf .sgtune/capacity
	$(BIN)/sgtune up --sim --gpus $(SIM_GPUS) --spec deploy/specs/capacity.yaml --runners $(RUNNERS) \
		--startup-timeout $(SIM_STARTUP_TIMEOUT) --benchmark-timeout $(SIM_BENCHMARK_TIMEOUT) \
		--data-dir .sgtune/capacity --output results-capacity.json

test: test-deps ## run every test of every module
	$(GO) test $(TESTFLAGS) $(PKGS)

test-deps: ## install what the export and page tests need (Debian: python3-optuna, python3-pandas, chromium) when missing
	@bash scripts/test-deps.sh

test-race: ## every test with the race detector (needs cgo)
	CGO_ENABLED=1 $(GO) test -race $(TESTFLAGS) $(PKGS)

fmt: ## format all Go code
	gofmt -w $(MODULES)

lint: ## gofmt and go vet over every module
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags fakenvml ./e2e/...
	@if command -v $(CC) >/dev/null 2>&1; then CGO_ENABLED=1 CGO_CFLAGS="$(NVML_CGO_CFLAGS)" $(GO) vet -tags nvml ./services/runner/...; fi

vet: ## go vet over every module
	$(GO) vet $(PKGS)

check-imports: ## domain packages must not import NATS
	@fail=0; for d in $$(ls -d services/*/internal/* 2>/dev/null); do \
		case $$(basename $$d) in natsio|natstest|fakeserver) continue;; esac; \
		if $(GO) list -deps ./$$d/... 2>/dev/null | grep -q '^github.com/nats-io'; then \
			echo "$$d imports NATS (only internal/natsio and Run may)"; fail=1; fi; \
	done; exit $$fail

verify-modules: ## build and vet each module on its own (GOWORK=off)
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...) || exit 1; done

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && GOWORK=off GOFLAGS=-mod=mod $(GO) mod tidy) || exit 1; done

bench: bench-controlplane $(BENCH_TARGETS) ## every benchmark (reports: docs/benchmarks.md)

bench-controlplane: ## proposal -> validated -> claimed latency on an embedded server (target: median <= 20 ms)
	$(GO) test -run XXX -bench BenchmarkProposalToClaim -benchtime 500x -count 3 ./e2e/

e2e-faults: ## issue 10's fault scenario 10 times: NATS SIGKILLed after a claim, nothing lost or run twice
	set -o pipefail; SGTUNE_FAULT_RUNS=$${SGTUNE_FAULT_RUNS:-10} $(GO) test -count=1 -timeout 30m -run TestFaultNATSKilledAfterClaim -v ./e2e/ | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|runs:'

bench-durability: ## outcomes/s with and without fsync on every write (docs/benchmarks.md)
	$(GO) test -run XXX -bench BenchmarkOutcomes -benchtime 2000x -count 5 ./pkg/natsx/embedded/

clean: ## remove build outputs and the quickstart data
	rm -rf $(BIN) .sgtune results.json results-capacity.json
