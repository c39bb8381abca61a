# Runner benchmarks (included by the root Makefile, which runs every
# BENCH_TARGETS entry in `make bench`): `make bench-runner`. Each runs once (-benchtime=1x): they are
# measurements for docs/benchmarks.md ("Runner"), not loops to average.
#   BenchmarkLoadgenFidelity   load generator TTFT vs `sgtune sim`'s own timing
#                              at 64/256/512 streams, client and server CPU
#   BenchmarkLoadgenFidelityGPULoad  mean TTFT vs the fake server's own at 256/512 streams,
#                              `sgtune bench` defaults, 50 ms TTFT / 30 ms a token; the first wave
#                              paced, in one burst, and on new connections, side by side (about 25
#                              minutes; SGTUNE_FIDELITY_SERVER=python|sim for the other stand-ins)
#   (bench-loadgen) BenchmarkCapacitySearch  capacity found vs a stand-in's known capacity
#                              BenchmarkTraceReplay     Mooncake arrival offsets kept, at the server
#   BenchmarkPacking8GPUHost   GPU-busy fraction of a study on a simulated 8-GPU host
#   BenchmarkSSEParser, BenchmarkRun512Streams  load generator micro-benchmarks
.PHONY: bench-runner
BENCH_TARGETS += bench-runner
bench-runner: ## runner benchmarks: load-generator fidelity, GPU packing, old and new policies side by side (about 35 minutes)
	cd services/runner && $(GO) test -run '^$$' -bench 'LoadgenFidelity' -benchtime=1x -timeout 60m .
	cd services/runner && $(GO) test -run '^$$' -bench 'Packing8GPUHost' -benchtime=1x -timeout 20m ./internal/natsio/
	cd services/runner && $(GO) test -run '^$$' -bench 'SSEParser|Run512Streams' -benchmem ./internal/loadgen/

.PHONY: bench-loadgen
BENCH_TARGETS += bench-loadgen
bench-loadgen: ## load generator: capacity search accuracy (concurrency and rate, 3 seeds) and trace-replay arrival times (about 15 minutes)
	cd services/runner && SGTUNE_CAPACITY_SWEEP=1 $(GO) test -run '^$$' -bench 'CapacitySearch' -benchtime=1x -timeout 60m .
	cd services/runner && $(GO) test -run '^$$' -bench 'TraceReplay' -benchtime=1x -timeout 30m .
