# queue-operator: `make dev` runs the whole system locally, `make test` passes the tests.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

LOCALBIN := $(CURDIR)/bin
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(LOCALBIN)/helm-$(HELM_VERSION)
CHART := charts/queue-operator

# Directory holding etcd, kube-apiserver and kubectl. Empty: built from the Go module proxy by
# hack/build-tools.sh (cached under ~/.cache/queue-operator). Set it to bring your own binaries.
KUBEBUILDER_ASSETS ?=
ASSETS = $${KUBEBUILDER_ASSETS:-$$(hack/build-tools.sh)}
# The same directory with kubelet, kube-controller-manager, kube-scheduler and containerd too
# (test/node's single-node cluster).
NODE_ASSETS = $${KUBEBUILDER_ASSETS:-$$(hack/build-tools.sh node)}

# Extra flags for go test, e.g. `make test TESTFLAGS='-run TestCRD -v'`.
TESTFLAGS ?=

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/
	@# One role per component, each from its own code's markers: the controller's reads no Secret.
	$(CONTROLLER_GEN) rbac:roleName=queue-operator crd:allowDangerousTypes=true paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=queue-operator-apiserver paths="./apiserver/..." output:rbac:artifacts:config=config/rbac/apiserver
	$(CONTROLLER_GEN) rbac:roleName=queue-operator-worker paths="./workers/..." output:rbac:artifacts:config=config/rbac/worker
	@# The Helm chart carries copies (test/helm fails when they drift).
	mkdir -p $(CHART)/crds $(CHART)/files/rbac/apiserver $(CHART)/files/rbac/worker
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/rbac/role.yaml
	cp config/rbac/apiserver/role.yaml $(CHART)/files/rbac/apiserver/role.yaml
	cp config/rbac/worker/role.yaml $(CHART)/files/rbac/worker/role.yaml
	@# ... and of the monitoring rules and dashboard (test/monitoring fails when they drift).
	mkdir -p $(CHART)/files/monitoring
	cp docs/monitoring/alerts.yaml docs/monitoring/grafana-queue-dashboard.json $(CHART)/files/monitoring/

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy methods
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: fmt
fmt: ## gofmt the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet
	@# With the static image's build flags: the packages vet compiles are then the ones `image`
	@# needs, found in the build cache instead of compiled a second time on a cold machine.
	CGO_ENABLED=0 go vet -trimpath ./...

.PHONY: lint
lint: vet ## go vet and a gofmt check (golangci-lint cannot be had here)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

.PHONY: tools
tools: $(CONTROLLER_GEN) ## Build etcd, kube-apiserver, kubectl (cached) and controller-gen
	@echo "KUBEBUILDER_ASSETS=$(ASSETS)"

.PHONY: test
test: manifests generate lint $(HELM) image ## Run all tests with -race against a real API server, Redis and PostgreSQL, and on a real node (root)
	@if [ -n "$${CI:-}" ] && ! git diff --quiet -- config api charts; then \
		echo "make manifests generate changed committed files (regenerate and commit them):"; git diff --stat -- config api charts; exit 1; fi
	@# `image` built the static binary once: internal/image and test/node, which build it again
	@# in parallel, find it in the build cache instead of compiling it twice.
	assets=$(NODE_ASSETS); KUBEBUILDER_ASSETS=$$assets HELM=$(HELM) hack/with-services.sh go test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

.PHONY: helm
helm: $(HELM) ## Install helm into bin/ (go install, cached)

.PHONY: helm-lint
helm-lint: $(HELM) ## helm lint the chart (charts/queue-operator)
	$(HELM) lint --strict $(CHART) --set database.url=postgres://lint --set apiserver.jwtSecret=lint --set auth.issuer=https://lint.supabase.co/auth/v1

.PHONY: build
build: ## Build bin/queue-operator
	go build -o $(LOCALBIN)/queue-operator .

# The product image's reference for `make image`.
IMAGE_TAG ?= ghcr.io/jengu/queue-operator:dev

.PHONY: image
image: ## Build the product image as a tarball without Docker (bin/queue-operator-image.tar; import with ctr/nerdctl/docker load)
	go run ./hack/image -tag $(IMAGE_TAG) -out $(LOCALBIN)/queue-operator-image.tar

.PHONY: run
run: ## Run the controller against the current kubeconfig
	go run . controller

.PHONY: dev
dev: manifests build $(if $(filter-out 0,$(NODE)),$(HELM)) ## Run the whole system locally: control plane, CRDs, JobQueues, controller, REST API, worker, Redis, PostgreSQL (FAKE_APIS=1: loopback stand-ins of the outside APIs; PROMETHEUS=1: a Prometheus scraping them; NODE=1: on a real single-node cluster, the chart installed from the product's image, as root)
	@if [ -n "$(NODE)" ] && [ "$(NODE)" != 0 ]; then \
		assets=$(NODE_ASSETS); KUBEBUILDER_ASSETS=$$assets HELM=$(HELM) go run ./hack/devnode; \
	else \
		assets=$(ASSETS); FAKE_APIS=$(FAKE_APIS) PROMETHEUS=$(PROMETHEUS) KUBEBUILDER_ASSETS=$$assets hack/with-services.sh $(LOCALBIN)/queue-operator dev; \
	fi

.PHONY: bench-queue
bench-queue: ## Benchmark the queue engine against Asynq and BullMQ (hack/bench; BENCHFLAGS=-quick)
	hack/bench/run.sh $(BENCHFLAGS)

.PHONY: bench-e2e
bench-e2e: build ## Measure jobs through the CRs end to end beside the seed's BullMQ stack: latency, kube-apiserver requests, etcd, CPU per job (hack/benche2e; BENCHE2EFLAGS=-jobs=50)
	go build -o $(LOCALBIN)/benche2e ./hack/benche2e
	assets=$(ASSETS); KUBEBUILDER_ASSETS=$$assets hack/with-services.sh $(LOCALBIN)/benche2e -bin $(LOCALBIN)/queue-operator $(BENCHE2EFLAGS)

.PHONY: clean
clean: ## Remove bin/ and .dev/ (the tools cache in ~/.cache/queue-operator stays)
	rm -rf $(LOCALBIN) .dev

$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(HELM):
	GOBIN=$(LOCALBIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $@
