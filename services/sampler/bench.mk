# Sampler benchmarks (issue 11; results in docs/benchmarks.md, "Sampler").
# Included by the top-level Makefile. The harness is e2e/samplerbench (its
# own package in the e2e module: it needs the validator, the runner and the
# simulator, which the sampler module does not import).
#
#   make bench-sampler                 # every surface and setting through the real services, 10 seeds, + warm start
#   make bench-sampler QUICK=1         # 3 seeds, budget 50, the default in parallel (a smoke run)
#   make bench-sampler-offline         # the same studies on the sampler's domain in process (minutes)
#   make bench-sampler SAMPLER_BENCH_ARGS='-surfaces synth-ridge -variants gp-ehvi-par -seeds 20'
#   make bench-sampler-scale           # proposal time with 256 in flight and 2,000 in the history; restore of 10,000 trials
#
# Best known fronts are cached in e2e/samplerbench/testdata/ and searched
# again when a surface changes.

SAMPLER_BENCH_OUT  ?= bench-sampler.md
SAMPLER_BENCH_ARGS ?=
QUICK              ?=

.PHONY: bench-sampler bench-sampler-offline bench-sampler-scale
BENCH_TARGETS += bench-sampler bench-sampler-scale

bench-sampler: ## sampler sample efficiency on 4 surfaces through the real services (QUICK=1 for a smoke run)
	$(GO) run ./e2e/samplerbench -mode services $(if $(QUICK),-quick,-warm) $(SAMPLER_BENCH_ARGS) | tee $(SAMPLER_BENCH_OUT)

bench-sampler-offline: ## the sampler benchmark on the sampler's domain in process (no NATS, simulated time)
	$(GO) run ./e2e/samplerbench -mode offline $(if $(QUICK),-quick,-warm) $(SAMPLER_BENCH_ARGS) | tee $(SAMPLER_BENCH_OUT)

bench-sampler-scale: ## proposal time at 256 in flight / 2,000 finished (target <= 50 ms) and Restore of 10,000 trials (< 2 s)
	$(GO) test -run '^$$' -bench 'Propose|Restore10000' -benchtime 20x -count 3 ./services/sampler/internal/sampling/
