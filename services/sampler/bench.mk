# Sampler benchmark (issue 4; results in docs/benchmarks.md, "Sampler").
# Included by the top-level Makefile:  include services/sampler/bench.mk
#
#   make bench-sampler                    # 10 seeds, budgets 50 and 100 (about 1.5 minutes on 2 cores)
#   make bench-sampler QUICK=1            # 3 seeds, budget 50 (seconds)
#   make bench-sampler SEEDS=20 SAMPLERS=motpe,motpe-b4,motpe-tpe,nsga2-seed,nsga2,random
#   make bench-sampler-study              # a whole 50-trial study through `sgtune up --sim` with 4 runners
#
# The best known front is cached in services/sampler/cmd/samplerbench/testdata/;
# it is searched again (about 30 s on 2 cores) when the problem or the simulator's model changes.

SAMPLER_BENCH_DIR  := services/sampler/cmd/samplerbench
SAMPLER_BENCH_REF  ?= $(SAMPLER_BENCH_DIR)/testdata/reference-h100-llama-3.1-8b.json
SAMPLER_BENCH_OUT  ?= bench-sampler.md
SEEDS              ?= 10
SAMPLERS           ?= motpe,motpe-b4,motpe-b16,motpe-tpe,nsga2-seed,nsga2,random
QUICK              ?=
SAMPLER_STUDY_SPEC ?= services/sampler/testdata/bench-study.yaml
SAMPLER_STUDY_DIR  ?= .sgtune/bench-sampler

.PHONY: bench-sampler bench-sampler-study
BENCH_TARGETS += bench-sampler

bench-sampler: ## sampler sample-efficiency benchmark on the simulator's model (SEEDS=10, QUICK=1)
	$(GO) run ./$(SAMPLER_BENCH_DIR) -seeds $(SEEDS) -variants $(SAMPLERS) \
		-reference $(SAMPLER_BENCH_REF) $(if $(QUICK),-quick) | tee $(SAMPLER_BENCH_OUT)

bench-sampler-study: build ## a whole simulated study (4 runners, 50 trials) scored like the benchmark
	$(BIN)/sgtune up --sim --runners 4 --n-trials 50 --spec $(SAMPLER_STUDY_SPEC) \
		--data-dir $(SAMPLER_STUDY_DIR) --output $(SAMPLER_STUDY_DIR)/results.json --no-load --quiet
	$(GO) run ./$(SAMPLER_BENCH_DIR) -seeds 1 -budgets 50 -variants motpe -reference $(SAMPLER_BENCH_REF) \
		-results $(SAMPLER_STUDY_DIR)/results.json
