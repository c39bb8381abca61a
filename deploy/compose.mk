# Containers and Compose: included by the Makefile (uses GO, BIN and target build).
#
#   make images         build sgtune/sgtune:dev and sgtune/nats-server:dev from local artifacts
#   make image-gpu      on a GPU host: sgtune/runner-gpu:dev = $(SGLANG_IMAGE) + sgtune built with NVML
#   make compose-up     the CPU-only stack (3 simulator runners); compose-down removes it and its volumes
#   make compose-e2e    both container scenarios (e2e/compose_test.go); FAILS when Docker is missing
#   make tools          the pinned tools below, built through the Go module proxy into .tools/
#
# Tools are built once per version under .tools/ (git-ignored):
#   Compose v2 CLI plugin  used when `docker compose` is missing (e.g. only docker-compose v1 is installed)
#   nats CLI               `nats kv get pareto front --raw` and friends
#   nats-server            the binary of the cluster image (the official image's shape)

.PHONY: images image-sgtune image-nats-server image-gpu compose-up compose-down compose-e2e \
	compose-config tools tool-compose tool-nats tool-nats-server docker-check

TOOLS               ?= .tools
IMAGE_TAG           ?= dev
SGTUNE_IMAGE        ?= sgtune/sgtune:$(IMAGE_TAG)
NATS_SERVER_IMAGE   ?= sgtune/nats-server:$(IMAGE_TAG)
RUNNER_IMAGE        ?= sgtune/runner-gpu:$(IMAGE_TAG)
SGLANG_IMAGE        ?= lmsysorg/sglang:v0.5.5
GO_IMAGE            ?= golang:1.26-bookworm
COMPOSE_VERSION     ?= v2.40.3
NATSCLI_VERSION     ?= v0.5.0
NATS_SERVER_VERSION ?= v2.15.3
# The image's user; the staged /data, /results and /tmp belong to it.
IMAGE_UID           ?= 65532

TOOLS_ABS          := $(abspath $(TOOLS))
COMPOSE_PLUGIN     := $(TOOLS)/compose-$(COMPOSE_VERSION)/docker-compose
NATS_CLI           := $(TOOLS)/natscli-$(NATSCLI_VERSION)/nats
NATS_SERVER_BIN    := $(TOOLS)/nats-server-$(NATS_SERVER_VERSION)/nats-server
IMAGE_CTX          := $(TOOLS)/image-ctx
# Where the plugin is installed for this repository only (DOCKER_CONFIG/cli-plugins).
DOCKER_CONFIG_DIR  := $(TOOLS_ABS)/docker
COMPOSE_FILES      := -f deploy/compose.yaml -f deploy/compose.sim.yaml
COMPOSE_RUNNERS    ?= 3

# `docker compose` if this Docker has Compose v2, else the plugin built here (via DOCKER_CONFIG).
compose_ok = $(shell docker compose version >/dev/null 2>&1 && echo yes)
COMPOSE = $(if $(compose_ok),docker compose,DOCKER_CONFIG=$(DOCKER_CONFIG_DIR) docker compose)

tools: tool-compose tool-nats tool-nats-server ## build the pinned container tools into .tools/

# .tools/bin/nats links to the pinned version: PATH=$PWD/.tools/bin:$PATH to use it.
tool-nats: $(NATS_CLI)
	@mkdir -p $(TOOLS)/bin && ln -sf ../natscli-$(NATSCLI_VERSION)/nats $(TOOLS)/bin/nats
$(NATS_CLI):
	@mkdir -p $(dir $@)
	GOBIN=$(abspath $(dir $@)) CGO_ENABLED=0 $(GO) install -trimpath github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)

tool-nats-server: $(NATS_SERVER_BIN)
$(NATS_SERVER_BIN):
	@mkdir -p $(dir $@)
	GOBIN=$(abspath $(dir $@)) CGO_ENABLED=0 $(GO) install -trimpath github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# The Compose module has exclude directives, so `go install pkg@version` refuses it:
# build it inside a writable copy of the module instead.
tool-compose: $(COMPOSE_PLUGIN)
	@mkdir -p $(DOCKER_CONFIG_DIR)/cli-plugins
	@ln -sf $(abspath $(COMPOSE_PLUGIN)) $(DOCKER_CONFIG_DIR)/cli-plugins/docker-compose
$(COMPOSE_PLUGIN):
	@mkdir -p $(dir $@)
	@set -e; src=$$(GOFLAGS=-mod=mod $(GO) mod download -json github.com/docker/compose/v2@$(COMPOSE_VERSION) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$src"; tmp=$$(mktemp -d); trap 'chmod -R u+w $$tmp; rm -rf $$tmp' EXIT; \
	cp -r "$$src"/. $$tmp/; chmod -R u+w $$tmp; \
	echo "building docker compose $(COMPOSE_VERSION) (a few minutes)"; \
	cd $$tmp && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath \
		-ldflags "-w -X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION)" \
		-o $(abspath $@) ./cmd

docker-check:
	@docker info >/dev/null 2>&1 || { echo "Docker is required but 'docker info' failed: is the engine running?" >&2; exit 1; }

# /etc/passwd and /etc/group name the image's user, so `docker cp -a` (restoring a
# JetStream backup into the volume) can map its uid.
define image-etc
mkdir -p $(1)/etc
printf 'root:x:0:0:root:/root:/sbin/nologin\nsgtune:x:$(IMAGE_UID):$(IMAGE_UID):sgtune:/work:/sbin/nologin\n' > $(1)/etc/passwd
printf 'root:x:0:\nsgtune:x:$(IMAGE_UID):\n' > $(1)/etc/group
endef

# The images' file systems are staged here, so the Dockerfiles need no base image
# and no RUN: rootfs/ is copied as root, owned/ as the image's user.
images: image-sgtune image-nats-server ## build the sgtune and nats-server images (no registry needed)

image-sgtune: build docker-check
	rm -rf $(IMAGE_CTX)/sgtune && mkdir -p $(IMAGE_CTX)/sgtune/rootfs/usr/local/bin $(IMAGE_CTX)/sgtune/rootfs/tmp \
		$(IMAGE_CTX)/sgtune/owned/data $(IMAGE_CTX)/sgtune/owned/results $(IMAGE_CTX)/sgtune/owned/work
	chmod 1777 $(IMAGE_CTX)/sgtune/rootfs/tmp
	$(call image-etc,$(IMAGE_CTX)/sgtune/rootfs)
	cp $(BIN)/sgtune $(IMAGE_CTX)/sgtune/rootfs/usr/local/bin/sgtune
	DOCKER_BUILDKIT=0 docker build -q -f deploy/docker/sgtune.Dockerfile -t $(SGTUNE_IMAGE) $(IMAGE_CTX)/sgtune

image-nats-server: build $(NATS_SERVER_BIN) docker-check
	rm -rf $(IMAGE_CTX)/nats && mkdir -p $(IMAGE_CTX)/nats/rootfs/usr/local/bin $(IMAGE_CTX)/nats/rootfs/etc/nats \
		$(IMAGE_CTX)/nats/rootfs/tmp $(IMAGE_CTX)/nats/owned/data
	chmod 1777 $(IMAGE_CTX)/nats/rootfs/tmp
	$(call image-etc,$(IMAGE_CTX)/nats/rootfs)
	cp $(NATS_SERVER_BIN) $(IMAGE_CTX)/nats/rootfs/nats-server
	cp $(BIN)/sgtune $(IMAGE_CTX)/nats/rootfs/usr/local/bin/sgtune
	cp deploy/nats/single.conf $(IMAGE_CTX)/nats/rootfs/etc/nats/nats-server.conf
	cp deploy/nats/cluster.conf $(IMAGE_CTX)/nats/rootfs/etc/nats/cluster.conf
	DOCKER_BUILDKIT=0 docker build -q -f deploy/docker/nats-server.Dockerfile -t $(NATS_SERVER_IMAGE) $(IMAGE_CTX)/nats

# GPU hosts only (needs a registry for $(SGLANG_IMAGE) and $(GO_IMAGE), and BuildKit):
# builds sgtune with NVML (cgo) inside the SGLang image, so it links that image's glibc.
image-gpu: ## on a GPU host: the runner image, $(SGLANG_IMAGE) + sgtune with NVML
	docker build -f deploy/docker/runner-gpu.Dockerfile --build-arg SGLANG_IMAGE=$(SGLANG_IMAGE) \
		--build-arg GO_IMAGE=$(GO_IMAGE) -t $(RUNNER_IMAGE) .

compose-config: tool-compose ## print the CPU-only stack's resolved compose config
	NATS_PASSWORD=$${NATS_PASSWORD:-unset} $(COMPOSE) $(COMPOSE_FILES) config

compose-up: images tool-compose ## start the CPU-only stack (deploy/.env must set NATS_PASSWORD)
	$(COMPOSE) $(COMPOSE_FILES) up -d --wait --scale runner=$(COMPOSE_RUNNERS)

compose-down: tool-compose ## stop the CPU-only stack and remove its volumes
	NATS_PASSWORD=$${NATS_PASSWORD:-unused} NATS_CLUSTER_PASSWORD=$${NATS_CLUSTER_PASSWORD:-unused} \
		$(COMPOSE) $(COMPOSE_FILES) -f deploy/compose.cluster.yaml down -v --remove-orphans

# Both scenarios in real containers; never skips: a missing Docker is a failure.
compose-e2e: docker-check images tool-compose tool-nats ## container end-to-end tests (Docker required)
	cd e2e && SGTUNE_COMPOSE_E2E=1 SGTUNE_REPO=$(CURDIR) SGTUNE_IMAGE=$(SGTUNE_IMAGE) \
		NATS_SERVER_IMAGE=$(NATS_SERVER_IMAGE) NATS_CLI=$(abspath $(NATS_CLI)) \
		COMPOSE_CMD="$(if $(compose_ok),docker compose,$(abspath $(COMPOSE_PLUGIN)))" \
		$(GO) test -tags compose -count=1 -timeout 30m -v -run 'TestCompose' .
