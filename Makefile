# function-fleetnodepool
#
# The two commands a newcomer runs:
#   make sandbox  the real Crossplane core reconciling every example
#                 FleetNodePool on a local control plane (Ctrl-C stops it),
#                 the packages installed through its package manager;
#                 make render is the fast, stateless preview
#   make test     every test tier (golangci-lint, unit, generated-file drift,
#                 render e2e, API conformance against a real kube-apiserver,
#                 package inspection, package install and upgrade through
#                 the package manager, sandbox e2e, providers e2e with the
#                 CAPA and CAPZ managers, metrics, fleet e2e: test/README.md)
#
# Tools (crossplane CLI and core, kube-apiserver, etcd, the Cluster API, CAPA
# and CAPZ managers, ...) are built from pinned Go modules under test/tools/
# into bin/ on first use, and reused after. Their versions are read from
# those go.mod files, the single place they are pinned.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
BIN     := $(CURDIR)/bin
TOOLS   := $(CURDIR)/test/tools

modver = $(shell awk '{ if ($$1 == "require") { $$1 = ""; $$0 = $$0 } } $$1 == "$(2)" && $$2 ~ /^v/ { print $$2; exit }' $(TOOLS)/$(1)/go.mod)

CROSSPLANE_CLI_VERSION  := $(call modver,crossplane-cli,github.com/crossplane/cli/v2)
CROSSPLANE_CORE_VERSION := $(call modver,crossplane,github.com/crossplane/crossplane/v2)
KUBE_VERSION            := $(call modver,kube,k8s.io/kubernetes)
ETCD_VERSION            := $(call modver,etcd,go.etcd.io/etcd/server/v3)
GOLANGCI_LINT_VERSION   := $(call modver,golangci-lint,github.com/golangci/golangci-lint/v2)
CAPI_VERSION            := $(call modver,capi,sigs.k8s.io/cluster-api)
CAPA_VERSION            := $(call modver,capa,sigs.k8s.io/cluster-api-provider-aws/v2)
CAPZ_VERSION            := $(call modver,capz,sigs.k8s.io/cluster-api-provider-azure)
KSM_VERSION             := $(call modver,kube-state-metrics,k8s.io/kube-state-metrics/v2)
PROMETHEUS_VERSION      := $(call modver,prometheus,github.com/prometheus/prometheus)
PROVIDER_KUBERNETES_VERSION := $(call modver,provider-kubernetes,github.com/crossplane-contrib/provider-kubernetes)

CROSSPLANE_CLI  := $(BIN)/crossplane-cli-$(CROSSPLANE_CLI_VERSION)/crossplane
CROSSPLANE_CORE := $(BIN)/crossplane-core-$(CROSSPLANE_CORE_VERSION)/crossplane
KUBE_APISERVER  := $(BIN)/kube-$(KUBE_VERSION)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(BIN)/kube-$(KUBE_VERSION)/kube-controller-manager
KUBECTL         := $(BIN)/kube-$(KUBE_VERSION)/kubectl
ETCD            := $(BIN)/etcd-$(ETCD_VERSION)/etcd
GOLANGCI_LINT   := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
FUNCTION_BIN    := $(BIN)/function
KUBE_STATE_METRICS := $(BIN)/kube-state-metrics-$(KSM_VERSION)/kube-state-metrics
PROMTOOL        := $(BIN)/prometheus-$(PROMETHEUS_VERSION)/promtool
PROMETHEUS      := $(BIN)/prometheus-$(PROMETHEUS_VERSION)/prometheus
CAPI_DIR        := $(BIN)/capi-$(CAPI_VERSION)
CAPI_MANAGERS   := $(CAPI_DIR)/core $(CAPI_DIR)/kubeadm-bootstrap $(CAPI_DIR)/kubeadm-control-plane $(CAPI_DIR)/capd
CAPA_MANAGER    := $(BIN)/capa-$(CAPA_VERSION)/manager
CAPZ_MANAGER    := $(BIN)/capz-$(CAPZ_VERSION)/manager
PROVIDER_KUBERNETES := $(BIN)/provider-kubernetes-$(PROVIDER_KUBERNETES_VERSION)/provider

# Version ldflags so the Kubernetes binaries report the version they are.
KUBE_MINOR   = $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS = $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBE_MINOR) -X $(p).gitTreeState=clean)

export CROSSPLANE_CLI CROSSPLANE_CORE FUNCTION_BIN

# Progress for builds that take minutes on a cold build cache.
define building
	@echo ">> building $(1) (first time only; a few minutes on a cold build cache)" >&2
endef

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Develop

.PHONY: generate
generate: ## Generate deepcopy code, the input CRD and the XRDs from apis/, and the management cluster's CRDs the tests serve (test/internal/crds).
	$(GO) generate ./...

.PHONY: build
build: ## Build the function binary into bin/.
	$(GO) build -o $(FUNCTION_BIN) ./fn

.PHONY: run
run: ## Run the function locally (insecure, debug logs) on :9443.
	$(GO) run ./fn --insecure --debug

.PHONY: render
render: build $(CROSSPLANE_CLI) $(CROSSPLANE_CORE) ## Render every example through the real Crossplane render engine.
	$(GO) run ./test/cmd/render

##@ Ship

# The Function package's root holds the Configuration variants, the RBAC
# manifest and the monitoring files too: they are not part of it.
XPKG_IGNORE := configuration/*,configuration-legacy/*,crossplane/*,monitoring/*,rbac/*

.PHONY: image
image: ## Build the runtime image as an OCI tarball (no Docker needed).
	mkdir -p $(BIN)/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN)/image/function ./fn
	$(GO) run ./test/cmd/image --binary=$(BIN)/image/function --output=$(BIN)/runtime.tar

.PHONY: xpkg
xpkg: image $(CROSSPLANE_CLI) ## Build the Function package (runtime embedded) and both Configuration packages into bin/.
	mkdir -p $(BIN)/no-examples
	$(CROSSPLANE_CLI) xpkg build --package-root=package --ignore='$(XPKG_IGNORE)' --examples-root=$(BIN)/no-examples \
		--embed-runtime-image-tarball=$(BIN)/runtime.tar -o $(BIN)/function-fleetnodepool.xpkg
	$(CROSSPLANE_CLI) xpkg build --package-root=package/configuration --examples-root=examples -o $(BIN)/configuration-fleetnodepool.xpkg
	$(CROSSPLANE_CLI) xpkg build --package-root=package/configuration-legacy --examples-root=examples -o $(BIN)/configuration-legacy-fleetnodepool.xpkg

SANDBOX_TOOLS := build $(CROSSPLANE_CORE) $(KUBE_APISERVER) $(ETCD) $(KUBE_CONTROLLER_MANAGER)
SANDBOX_ENV = KUBE_APISERVER=$(KUBE_APISERVER) ETCD=$(ETCD) KUBE_CONTROLLER_MANAGER=$(KUBE_CONTROLLER_MANAGER) \
	CROSSPLANE_CRDS=$$(cd $(TOOLS)/crossplane && $(GO) list -m -f '{{.Dir}}' github.com/crossplane/crossplane/v2)/cluster/crds

PROVIDERS_ENV = CAPA_MANAGER=$(CAPA_MANAGER) CAPZ_MANAGER=$(CAPZ_MANAGER)

CAPI_ENV = CAPI_CORE=$(CAPI_DIR)/core CAPI_BOOTSTRAP=$(CAPI_DIR)/kubeadm-bootstrap \
	CAPI_CONTROLPLANE=$(CAPI_DIR)/kubeadm-control-plane CAPI_INFRASTRUCTURE=$(CAPI_DIR)/capd

# CAPI=1 adds the real Cluster API managers and simulated clusters.
CAPI ?=
# PROVIDERS=1 adds, to CAPI=1, the CAPA and CAPZ managers and the AWS and
# Azure examples (a separate switch: a first build of both takes ~20 min).
PROVIDERS ?=
# DIRECT=1 applies the XRD and Composition files and registers the function
# by hand, instead of installing the packages through the package manager.
DIRECT ?=
# CELLS=N adds N cells (docs/cells.md): Cluster API management clusters of
# their own (etcd, kube-apiserver, the Cluster API managers, each in a
# network namespace of its own: needs root and unshare) with the cells
# example's Cluster and pool, reached from the central cluster through
# provider-kubernetes.
CELLS ?=

CELL_CMD := $(BIN)/cell-cmd
# What the cells need beside the sandbox's tools, and the variables that
# pass them with CAPI_ENV's (sandbox.CellsEnv, sandbox.ProviderKubernetesEnv).
CELLS_TOOLS := $(CAPI_MANAGERS) $(PROVIDER_KUBERNETES) cell-cmd
CELLS_ENV = CELL_CMD=$(CELL_CMD) PROVIDER_KUBERNETES=$(PROVIDER_KUBERNETES)

.PHONY: sandbox
sandbox: $(SANDBOX_TOOLS) $(KUBECTL) $(if $(CAPI)$(PROVIDERS),$(CAPI_MANAGERS)) $(if $(PROVIDERS),$(CAPA_MANAGER) $(CAPZ_MANAGER)) $(if $(CELLS),$(CELLS_TOOLS)) $(if $(DIRECT),,xpkg) ## The real Crossplane core reconciling the example FleetNodePools on a local control plane (Ctrl-C stops it), the packages installed through the package manager; CAPI=1 adds the real Cluster API managers and sim clusters, PROVIDERS=1 also the CAPA and CAPZ managers and the AWS and Azure examples, CELLS=N N cells (Cluster API management clusters reached through provider-kubernetes), DIRECT=1 installs from files instead.
	$(GO) build -o $(BIN)/sandbox-cmd ./test/cmd/sandbox
	$(SANDBOX_ENV) $(CAPI_ENV) $(PROVIDERS_ENV) $(CELLS_ENV) XPKG_DIR=$(BIN) $(BIN)/sandbox-cmd --dir=$(BIN)/sandbox $(if $(CAPI),--capi) $(if $(PROVIDERS),--providers) $(if $(CELLS),--cells=$(CELLS)) $(if $(DIRECT),--direct)

# The cell command is the repository's own code: built every time (a
# relink on a warm cache), as the sandbox command is.
.PHONY: cell-cmd
cell-cmd: ## Build the command each cell runs (test/cmd/cell) into bin/: CELLS=N and the tiers that start cells.
	$(GO) build -o $(CELL_CMD) ./test/cmd/cell

.PHONY: kubectl
kubectl: $(KUBECTL) ## Build kubectl into bin/ to look around the sandbox.

.PHONY: kube-state-metrics
kube-state-metrics: $(KUBE_STATE_METRICS) ## Build kube-state-metrics into bin/ to export the sandbox's pools (README, "Monitoring").
	@echo $(KUBE_STATE_METRICS)

.PHONY: prometheus
prometheus: $(PROMETHEUS) $(PROMTOOL) ## Build Prometheus and promtool into bin/ to load the shipped rules (README, "Monitoring").
	@echo $(PROMETHEUS) $(PROMTOOL)

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (.golangci.yml: gosec and correctness linters, gofmt, goimports) on every build tag.
	$(GOLANGCI_LINT) run ./...

##@ Test
# One directory and build tag per tier; test/README.md lists them, what each
# needs (the variables set here) and how long it takes. Run without its
# variables, a tier skips with a message (fails under CI=true).

.PHONY: test
test: lint test-unit test-fuzz test-generate test-rules test-render test-conformance test-xpkg test-package test-sandbox test-providers test-cells test-metrics test-fleet ## Run every test tier.

.PHONY: test-unit
test-unit: test-core-deps ## Unit tests under the race detector: the planning core, providers and RunFunction adapter.
	$(GO) test -race -count=1 ./...

# FUZZTIME is how much test-fuzz fuzzes each target: a count of executions
# in make test (about 10 s each here), a duration for the long runs of
# test/benchmarks/README.md (FUZZTIME=10m). A count, because Go 1.26's fuzz
# coordinator can fail a clean run with "context deadline exceeded" when a
# duration ends while a worker is mid-input (go.dev/issue/75804, fixed in Go
# 1.27); a count has no deadline to race. Long duration runs can still hit
# it: a failure with no "Failing input written to" line is that race.
FUZZTIME ?= 20000x

.PHONY: test-fuzz
test-fuzz: ## Fuzz every fuzz target FUZZTIME (executions or a duration); a failing input is saved under its package's testdata/fuzz.
	@grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' fn apis test | sed 's/:func / /' | sort | \
		while read -r file target; do \
			echo "$$target ($$(dirname $$file)), $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file) || exit 1; \
		done

# The planning core is provider-neutral: no cloud package, not even through
# another package. Clouds are wired in fn/providers.
CLOUD_PACKAGES := /fn/provider/[a-z]|/fn/providers|cluster-api-provider-aws|cluster-api-provider-azure|cluster-api/test/infrastructure

.PHONY: test-core-deps
test-core-deps: ## Fail when fn/plan imports a cloud package.
	@if $(GO) list -deps ./fn/plan | grep -E '$(CLOUD_PACKAGES)'; then \
		echo "fn/plan imports the cloud packages above: move cloud knowledge behind the provider.Provider interface" >&2; exit 1; fi

.PHONY: test-generate
test-generate: ## Fail when generated files drift from the Go types.
	$(GO) generate ./...
	@git diff --exit-code -- apis package test/internal/crds || { echo "generated files drifted: run 'make generate' and commit" >&2; exit 1; }

.PHONY: test-render
test-render: build $(CROSSPLANE_CLI) $(CROSSPLANE_CORE) ## Render e2e: examples through the real render engine vs golden files.
	$(GO) test -count=1 -tags render ./test/e2e/render/... -timeout 10m

# GOLDEN=1 rewrites the conformance tier's golden file (which webhook judges
# each composed kind): review the diff.
GOLDEN ?=

.PHONY: test-conformance
test-conformance: build $(CROSSPLANE_CLI) $(CROSSPLANE_CORE) $(KUBE_APISERVER) $(ETCD) $(CAPI_DIR)/core $(CAPI_DIR)/kubeadm-bootstrap $(CAPA_MANAGER) $(CAPZ_MANAGER) ## API conformance: rendered objects applied to a real kube-apiserver with upstream CRDs, judged by the webhooks of the real Cluster API, CAPA and CAPZ managers.
	KUBE_APISERVER=$(KUBE_APISERVER) ETCD=$(ETCD) CAPI_CORE=$(CAPI_DIR)/core CAPI_BOOTSTRAP=$(CAPI_DIR)/kubeadm-bootstrap \
		CAPA_MANAGER=$(CAPA_MANAGER) CAPZ_MANAGER=$(CAPZ_MANAGER) $(GO) test -count=1 -tags conformance ./test/conformance/... -v -timeout 15m $(if $(GOLDEN),-args -update)

.PHONY: test-sandbox
test-sandbox: $(SANDBOX_TOOLS) ## Sandbox e2e: the real Crossplane core reconciling the examples (drift, edits, version bump, restart, delete).
	$(SANDBOX_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) $(GO) test -count=1 -tags sandbox ./test/e2e/sandbox/... -v -timeout 15m

.PHONY: test-providers
test-providers: $(SANDBOX_TOOLS) $(CAPI_MANAGERS) $(CAPA_MANAGER) $(CAPZ_MANAGER) ## Providers e2e: every example composed by the real Crossplane with the Cluster API, CAPA and CAPZ managers running; each converges, whatever order Crossplane applies its objects in.
	$(SANDBOX_ENV) $(CAPI_ENV) $(PROVIDERS_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) \
		$(GO) test -count=1 -tags providers ./test/e2e/providers/... -v -timeout 15m

# CELLS_ARGS sizes the cells run, e.g. '-cells.pools=50 -cells.cells=1'.
CELLS_ARGS ?=

.PHONY: test-cells
test-cells: $(SANDBOX_TOOLS) $(CELLS_TOOLS) ## Cells e2e: one Crossplane composing pools into two cells (Cluster API management clusters of their own) through provider-kubernetes: compose, channel bump, class change, a cell's API server stopped; the invariant watcher on each cell.
	$(SANDBOX_ENV) $(CAPI_ENV) $(CELLS_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) \
		$(GO) test -count=1 -tags cells ./test/e2e/cells/... -v -timeout 30m $(if $(CELLS_ARGS),-args $(CELLS_ARGS))

MONITORING_ENV = KUBE_STATE_METRICS=$(KUBE_STATE_METRICS) PROMETHEUS=$(PROMETHEUS)

.PHONY: test-metrics
test-metrics: $(SANDBOX_TOOLS) $(CAPI_MANAGERS) $(KUBE_STATE_METRICS) $(PROMETHEUS) ## Metrics tier: kube-state-metrics with package/monitoring's configuration and Prometheus with its rules, on the CAPI sandbox (series equal status, an alert fires and resolves, dashboard queries run).
	$(SANDBOX_ENV) $(CAPI_ENV) $(MONITORING_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) \
		$(GO) test -count=1 -tags metrics ./test/e2e/metrics/... -v -timeout 20m

FUNCTION_BROKEN_RETENTION_BIN := $(BIN)/function-broken-retention
# FLEET_ARGS sizes the fleet run, e.g. '-fleet.clusters=10 -fleet.pools=5 -fleet.replicas=3'.
FLEET_ARGS ?=

.PHONY: test-fleet
test-fleet: $(SANDBOX_TOOLS) $(CAPI_MANAGERS) ## Fleet e2e: the function, Crossplane and the real Cluster API managers (in-memory machines) at fleet shape, with an invariant watcher.
	$(GO) build -tags fleetnodepool_break_retention -o $(FUNCTION_BROKEN_RETENTION_BIN) ./fn
	$(SANDBOX_ENV) $(CAPI_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) \
		FUNCTION_BROKEN_RETENTION_BIN=$(FUNCTION_BROKEN_RETENTION_BIN) \
		$(GO) test -count=1 -tags fleet ./test/e2e/fleet/... -v -timeout 80m -args $(FLEET_ARGS)

.PHONY: test-rules
test-rules: $(PROMTOOL) ## Alerting rules: promtool check and unit tests of every alert of package/monitoring (one case that fires, one that does not).
	PROMTOOL=$(PROMTOOL) $(GO) test -count=1 -tags rules ./test/monitoring/... -v -timeout 5m

.PHONY: test-xpkg
test-xpkg: xpkg ## Inspect the Function and Configuration packages make xpkg builds.
	XPKG_DIR=$(BIN) $(GO) test -count=1 -tags xpkg ./test/e2e/xpkg/... -timeout 5m

.PHONY: test-package
test-package: xpkg $(SANDBOX_TOOLS) ## Package e2e: the packages pushed to a loopback OCI registry, the Configuration installed and upgraded through Crossplane's package manager.
	$(SANDBOX_ENV) FUNCTION_BIN=$(FUNCTION_BIN) CROSSPLANE_CORE=$(CROSSPLANE_CORE) XPKG_DIR=$(BIN) \
		$(GO) test -count=1 -tags pkg ./test/e2e/pkg/... -v -timeout 10m

.PHONY: golden
golden: build $(CROSSPLANE_CLI) $(CROSSPLANE_CORE) ## Regenerate the render golden files (review the diff!).
	$(GO) test -count=1 -tags render ./test/e2e/render/... -update

##@ Tools (built from pinned modules into bin/, reused after)

.PHONY: tools
tools: $(CROSSPLANE_CLI) $(CROSSPLANE_CORE) $(KUBE_APISERVER) $(ETCD) $(GOLANGCI_LINT) $(CAPI_MANAGERS) $(CAPA_MANAGER) $(CAPZ_MANAGER) $(KUBE_STATE_METRICS) $(PROMTOOL) $(PROMETHEUS) $(PROVIDER_KUBERNETES) ## Build every tool.

$(CROSSPLANE_CLI):
	$(call building,crossplane CLI $(CROSSPLANE_CLI_VERSION))
	cd $(TOOLS)/crossplane-cli && time $(GO) build -o $@ github.com/crossplane/cli/v2/cmd/crossplane

# The core carries its version: the package manager checks packages'
# crossplane.version constraints against it ("invalid semantic version"
# without). A core built without it is rebuilt (a relink on a warm cache).
CROSSPLANE_CORE_LDFLAGS := -X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=$(CROSSPLANE_CORE_VERSION)
ifneq ($(wildcard $(CROSSPLANE_CORE)),)
ifneq ($(shell $(CROSSPLANE_CORE) --version 2>/dev/null),$(CROSSPLANE_CORE_VERSION))
.PHONY: $(CROSSPLANE_CORE)
endif
endif

$(CROSSPLANE_CORE):
	$(call building,Crossplane core $(CROSSPLANE_CORE_VERSION))
	cd $(TOOLS)/crossplane && time $(GO) build -ldflags '$(CROSSPLANE_CORE_LDFLAGS)' -o $@ github.com/crossplane/crossplane/v2/cmd/crossplane

$(KUBE_APISERVER):
	$(call building,kube-apiserver $(KUBE_VERSION))
	cd $(TOOLS)/kube && time $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(KUBE_CONTROLLER_MANAGER):
	$(call building,kube-controller-manager $(KUBE_VERSION))
	cd $(TOOLS)/kube && time $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-controller-manager

$(KUBECTL):
	$(call building,kubectl $(KUBE_VERSION))
	cd $(TOOLS)/kube && time $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kubectl

$(ETCD):
	$(call building,etcd $(ETCD_VERSION))
	cd $(TOOLS)/etcd && time $(GO) build -o $@ go.etcd.io/etcd/server/v3

# The Cluster API managers (core, kubeadm bootstrap and control plane, CAPD)
# the CAPI sandbox and the fleet e2e run; the conformance tier runs core and
# the kubeadm bootstrap manager for their webhooks.
$(CAPI_DIR)/core:
	$(call building,Cluster API core manager $(CAPI_VERSION))
	cd $(TOOLS)/capi && time $(GO) build -o $@ sigs.k8s.io/cluster-api/core

$(CAPI_DIR)/kubeadm-bootstrap:
	$(call building,Cluster API kubeadm bootstrap manager $(CAPI_VERSION))
	cd $(TOOLS)/capi && time $(GO) build -o $@ sigs.k8s.io/cluster-api/bootstrap/kubeadm

$(CAPI_DIR)/kubeadm-control-plane:
	$(call building,Cluster API kubeadm control-plane manager $(CAPI_VERSION))
	cd $(TOOLS)/capi && time $(GO) build -o $@ sigs.k8s.io/cluster-api/controlplane/kubeadm

$(CAPI_DIR)/capd:
	$(call building,CAPD manager (in-memory backend))
	cd $(TOOLS)/capi && time $(GO) build -o $@ sigs.k8s.io/cluster-api/test/infrastructure/docker

# The infrastructure providers' managers (CAPA, CAPZ) the conformance tier
# runs out of cluster for their admission webhooks; each module pins its own
# Cluster API (test/tools/capa/go.mod, test/tools/capz/go.mod say why).
$(CAPA_MANAGER):
	$(call building,Cluster API Provider AWS manager $(CAPA_VERSION))
	cd $(TOOLS)/capa && time $(GO) build -o $@ sigs.k8s.io/cluster-api-provider-aws/v2

$(CAPZ_MANAGER):
	$(call building,Cluster API Provider Azure manager $(CAPZ_VERSION))
	cd $(TOOLS)/capz && time $(GO) build -o $@ sigs.k8s.io/cluster-api-provider-azure

# kube-state-metrics, promtool and the Prometheus server: the metrics tier
# and the rule tests (package/monitoring).
$(KUBE_STATE_METRICS):
	$(call building,kube-state-metrics $(KSM_VERSION))
	cd $(TOOLS)/kube-state-metrics && time $(GO) build -o $@ k8s.io/kube-state-metrics/v2

$(PROMTOOL):
	$(call building,promtool $(PROMETHEUS_VERSION))
	cd $(TOOLS)/prometheus && time $(GO) build -o $@ github.com/prometheus/prometheus/cmd/promtool

$(PROMETHEUS):
	$(call building,Prometheus $(PROMETHEUS_VERSION))
	cd $(TOOLS)/prometheus && time $(GO) build -o $@ github.com/prometheus/prometheus/cmd/prometheus

# provider-kubernetes: the cells sandbox (CELLS=N) runs it out of cluster
# next to the central Crossplane, to compose into each cell.
$(PROVIDER_KUBERNETES):
	$(call building,provider-kubernetes $(PROVIDER_KUBERNETES_VERSION))
	cd $(TOOLS)/provider-kubernetes && time $(GO) build -o $@ github.com/crossplane-contrib/provider-kubernetes/cmd/provider

$(GOLANGCI_LINT):
	$(call building,golangci-lint $(GOLANGCI_LINT_VERSION))
	cd $(TOOLS)/golangci-lint && time $(GO) build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: clean
clean: ## Remove build output (keeps nothing in bin/).
	rm -rf $(BIN)
