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

.PHONY: all build run test test-deps test-race lint vet fmt check-imports verify-modules tidy bench bench-controlplane bench-durability e2e-faults clean help

all: lint test build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/sgtune (static, CGO_ENABLED=0)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune ./cmd/sgtune

build-nvml: ## build bin/sgtune with go-nvml (cgo; for GPU hosts)
	CGO_ENABLED=1 $(GO) build -tags nvml -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/sgtune ./cmd/sgtune

run: build ## run a whole simulated study on the embedded NATS (about a minute)
	@# A fresh demo every time: its own data dir is removed (no --no-load, which
	@# says what it deletes from a store that may hold other studies).
	rm -rf .sgtune/quickstart
	$(BIN)/sgtune up --sim --spec $(SPEC) --n-trials $(N_TRIALS) --runners $(RUNNERS) \
		--startup-timeout $(SIM_STARTUP_TIMEOUT) --benchmark-timeout $(SIM_BENCHMARK_TIMEOUT) \
		--data-dir .sgtune/quickstart --output results.json

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
	rm -rf $(BIN) .sgtune results.json
