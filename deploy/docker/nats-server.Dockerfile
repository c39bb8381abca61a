# A NATS server image shaped like the official `nats` scratch image
# (ENTRYPOINT /nats-server, CMD --config <file>), built from the
# github.com/nats-io/nats-server/v2 module (NATS_SERVER_VERSION in
# deploy/compose.mk) because this project's machines have no image registry.
# It also carries the static sgtune binary, only so health checks can run
# `sgtune health URL` in a scratch image (no shell, no wget).
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 owned/ /
ENV PATH=/usr/local/bin:/ \
    TMPDIR=/tmp
USER 65532:65532
# 4222 clients, 6222 cluster routes, 8222 monitoring.
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--config", "/etc/nats/nats-server.conf"]
