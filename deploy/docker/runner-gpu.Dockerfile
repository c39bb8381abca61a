# The GPU runner image for real hosts: SGLang's image (lmsysorg/sglang, which has
# python3 -m sglang.launch_server, CUDA and a glibc) plus the sgtune binary built
# with NVML (go-nvml needs cgo). The binary is built inside the SGLang image, so it
# links exactly the glibc it will run with. Needs a registry (both base images are
# pulled) and BuildKit; run from the repository root on a GPU host:
#
#   make image-gpu SGLANG_IMAGE=lmsysorg/sglang:v0.5.5
#   # = docker build -f deploy/docker/runner-gpu.Dockerfile \
#   #     --build-arg SGLANG_IMAGE=lmsysorg/sglang:v0.5.5 -t sgtune/runner-gpu:dev .
#
# This machine's project CI cannot build it (no registry); docs/operations.md has
# a variant that copies a binary from `make build-nvml` instead.
ARG SGLANG_IMAGE=lmsysorg/sglang:v0.5.5
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS go

FROM ${SGLANG_IMAGE} AS build
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=1
WORKDIR /src
COPY . .
RUN go build -tags nvml -trimpath -o /out/sgtune ./cmd/sgtune && /out/sgtune --help >/dev/null

FROM ${SGLANG_IMAGE}
COPY --from=build /out/sgtune /usr/local/bin/sgtune
ENV SGTUNE_LOG_DIR=/logs
# The runner starts `python3 -m sglang.launch_server` per trial on its GPUs.
ENTRYPOINT ["/usr/local/bin/sgtune"]
CMD ["runner"]
