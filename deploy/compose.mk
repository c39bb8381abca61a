# Containers and Compose: included by the Makefile (uses GO, BIN and target build).
#
#   make images         build sgtune/sgtune:dev and sgtune/nats-server:dev from local artifacts
#   make image-gpu      on a GPU host: sgtune/runner-gpu:dev = $(SGLANG_IMAGE) + sgtune built with NVML
#   make compose-up     the CPU-only stack (3 simulator runners): writes deploy/.env with a random
#                       NATS_PASSWORD when there is none, waits until healthy, and writes
#                       deploy/nats-context.json for the NATS CLI (compose-front reads the front)
#   make compose-down   removes the stack and its volumes
#   make compose-e2e    both container scenarios (e2e/compose_test.go); FAILS when Docker is missing
#   make tools          the pinned tools below, built through the Go module proxy into .tools/
#
# Tools are built once per version under .tools/ (git-ignored):
#   Compose v2 CLI plugin  used when `docker compose` is missing (e.g. only docker-compose v1 is installed)
#   nats CLI               `nats kv get pareto front --raw` and friends
#   nats-server            the binary of the cluster image (the official image's shape)

.PHONY: images image-sgtune image-nats-server image-gpu compose-up compose-down compose-e2e \
	compose-config compose-env compose-context compose-front compose-ps \
	tools tool-compose tool-nats tool-nats-server docker-check

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
# The stack's settings (Compose reads them; compose-env creates the file) and
# the NATS CLI context compose-up writes (it holds the password: mode 0600).
COMPOSE_ENV_FILE   ?= deploy/.env
NATS_CONTEXT_FILE  ?= deploy/nats-context.json

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

image-sgtune: build-static docker-check
	rm -rf $(IMAGE_CTX)/sgtune && mkdir -p $(IMAGE_CTX)/sgtune/rootfs/usr/local/bin $(IMAGE_CTX)/sgtune/rootfs/tmp \
		$(IMAGE_CTX)/sgtune/owned/data $(IMAGE_CTX)/sgtune/owned/results $(IMAGE_CTX)/sgtune/owned/work
	chmod 1777 $(IMAGE_CTX)/sgtune/rootfs/tmp
	$(call image-etc,$(IMAGE_CTX)/sgtune/rootfs)
	cp $(BIN)/sgtune-static $(IMAGE_CTX)/sgtune/rootfs/usr/local/bin/sgtune
	DOCKER_BUILDKIT=0 docker build -q -f deploy/docker/sgtune.Dockerfile -t $(SGTUNE_IMAGE) $(IMAGE_CTX)/sgtune

image-nats-server: build-static $(NATS_SERVER_BIN) docker-check
	rm -rf $(IMAGE_CTX)/nats && mkdir -p $(IMAGE_CTX)/nats/rootfs/usr/local/bin $(IMAGE_CTX)/nats/rootfs/etc/nats \
		$(IMAGE_CTX)/nats/rootfs/tmp $(IMAGE_CTX)/nats/owned/data
	chmod 1777 $(IMAGE_CTX)/nats/rootfs/tmp
	$(call image-etc,$(IMAGE_CTX)/nats/rootfs)
	cp $(NATS_SERVER_BIN) $(IMAGE_CTX)/nats/rootfs/nats-server
	cp $(BIN)/sgtune-static $(IMAGE_CTX)/nats/rootfs/usr/local/bin/sgtune
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

# deploy/.env from .env.example with random passwords, when there is none.
compose-env: ## create deploy/.env with a random NATS_PASSWORD if it does not exist
	@if [ ! -f $(COMPOSE_ENV_FILE) ]; then \
		umask 077; \
		pw=$$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n'); cpw=$$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n'); \
		sed -e "s/^NATS_PASSWORD=$$/NATS_PASSWORD=$$pw/" -e "s/^NATS_CLUSTER_PASSWORD=$$/NATS_CLUSTER_PASSWORD=$$cpw/" \
			deploy/.env.example > $(COMPOSE_ENV_FILE); \
		echo "wrote $(COMPOSE_ENV_FILE) with a new random NATS_PASSWORD (keep it; every service and the NATS CLI use it)"; \
	fi
	@grep -Eq '^NATS_PASSWORD=.+' $(COMPOSE_ENV_FILE) || \
		{ echo "$(COMPOSE_ENV_FILE): set NATS_PASSWORD (letters and digits)" >&2; exit 1; }

# Values of the env file, for the NATS CLI context (the environment wins, as for Compose).
env_value = $(or $($(1)),$(shell sed -n 's/^$(1)=//p' $(COMPOSE_ENV_FILE) 2>/dev/null | tail -1),$(2))

compose-up: images tool-compose tool-nats compose-env ## start the CPU-only stack and write the NATS CLI context (see deploy/.env)
	$(COMPOSE) --env-file $(COMPOSE_ENV_FILE) $(COMPOSE_FILES) up -d --wait --wait-timeout 300 --scale runner=$(COMPOSE_RUNNERS)
	@$(MAKE) --no-print-directory compose-context
	@echo "the stack is up; the front (once trials are done): make compose-front"
	@echo "  or: $(NATS_CLI) --context $(NATS_CONTEXT_FILE) kv get pareto front --raw"

# The NATS CLI context: the published NATS port and the env file's credentials.
compose-context: tool-compose
	@set -e; hostport=$$($(COMPOSE) --env-file $(COMPOSE_ENV_FILE) $(COMPOSE_FILES) port nats 4222 | tail -1); \
	test -n "$$hostport" || { echo "compose-context: NATS publishes no port (is the stack up?)" >&2; exit 1; }; \
	hostport=$$(echo "$$hostport" | sed 's/^0\.0\.0\.0:/127.0.0.1:/'); \
	umask 077; printf '{"description":"sgtune compose stack (make compose-up)","url":"nats://%s","user":"%s","password":"%s"}\n' \
		"$$hostport" '$(call env_value,NATS_USER,sgtune)' '$(call env_value,NATS_PASSWORD,)' > $(NATS_CONTEXT_FILE); \
	echo "wrote $(NATS_CONTEXT_FILE) (nats://$$hostport, user $(call env_value,NATS_USER,sgtune))"

compose-front: tool-nats ## print the compose stack's current Pareto front with the NATS CLI
	@$(NATS_CLI) --context $(NATS_CONTEXT_FILE) kv get pareto front --raw

compose-ps: tool-compose ## the compose stack's containers and their state
	$(COMPOSE) --env-file $(COMPOSE_ENV_FILE) $(COMPOSE_FILES) ps -a

compose-down: tool-compose ## stop the CPU-only stack and remove its volumes
	NATS_PASSWORD=$${NATS_PASSWORD:-unused} NATS_CLUSTER_PASSWORD=$${NATS_CLUSTER_PASSWORD:-unused} \
		$(COMPOSE) $(if $(wildcard $(COMPOSE_ENV_FILE)),--env-file $(COMPOSE_ENV_FILE)) $(COMPOSE_FILES) -f deploy/compose.cluster.yaml down -v --remove-orphans
	rm -f $(NATS_CONTEXT_FILE)

# Both scenarios in real containers; never skips: a missing Docker is a failure.
compose-e2e: docker-check images tool-compose tool-nats ## container end-to-end tests (Docker required)
	cd e2e && SGTUNE_COMPOSE_E2E=1 SGTUNE_REPO=$(CURDIR) SGTUNE_IMAGE=$(SGTUNE_IMAGE) \
		NATS_SERVER_IMAGE=$(NATS_SERVER_IMAGE) NATS_CLI=$(abspath $(NATS_CLI)) \
		COMPOSE_CMD="$(if $(compose_ok),docker compose,$(abspath $(COMPOSE_PLUGIN)))" \
		$(GO) test -tags compose -count=1 -timeout 30m -v -run 'TestCompose' .
