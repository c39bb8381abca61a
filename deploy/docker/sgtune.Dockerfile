# The sgtune image: one static binary (make build-static, CGO_ENABLED=0) on scratch.
# It serves every CPU-side role: `sgtune nats` (embedded JetStream), sampler,
# validator, reporter and the simulator-backed runner (`sgtune runner --sim`,
# which starts `sgtune sim` as a child process in the same container).
#
# Built by `make images` from a staged context (deploy/compose.mk, target
# images): rootfs/ holds usr/local/bin/sgtune, an empty tmp/ (mode 1777) and
# the empty directories below. No base image is pulled.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 owned/ /
ENV PATH=/usr/local/bin \
    TMPDIR=/tmp \
    SGTUNE_LOG_DIR=/tmp/sgtune-runner
USER 65532:65532
WORKDIR /work
# 4222 clients, 8222 monitoring (sgtune nats --http-port 8222).
EXPOSE 4222 8222
ENTRYPOINT ["/usr/local/bin/sgtune"]
CMD ["--help"]
