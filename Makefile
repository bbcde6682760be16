# restoredrill - every target sets up what it needs.
SHELL := /bin/bash
# The functions run on Lambda's python3.12: the environments use it when this machine has it (on
# PATH, or a pyenv version that is not the active one), and python3 otherwise. Python 3.11 stays
# supported for the operator CLI; mypy checks every file against 3.11 (pyproject's [tool.mypy]).
LAMBDA_PYTHON := python3.12
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach candidate,$(LAMBDA_PYTHON) \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/$(LAMBDA_PYTHON)),\
	$(if $(shell $(candidate) -c '' 2>/dev/null && echo usable),$(candidate))) python3)
endif
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
CHECKOV := .venv-checkov
# Pinned: a new checkov release brings new checks, which must not turn `make lint` red unasked.
CHECKOV_VERSION ?= 3.3.30
FAULT ?=

.PHONY: help venv tools postgres chromium demo test test-unit test-adapters test-db test-e2e lint format build export-template sam-local bench soak fleet screenshots clean

help:
	@echo "make demo     one complete drill on this machine (FAULT=<name>: see .venv/bin/restoredrill demo --help; AURORA=1: an Aurora cluster drill)"
	@echo "make test     the whole suite: unit, adapters (moto), db (real PostgreSQL), e2e (local cloud)"
	@echo "make lint     ruff, mypy, sam validate --lint, cfn-lint, checkov"
	@echo "make soak     200 drills through the local cloud with random faults (not run in CI)"
	@echo "make fleet    100 tiny databases in two Regions against the cap and the quota (not in CI)"
	@echo "make bench    check suite vs pg_amcheck and count(*); the CLI's start-up; the evidence side"
	@echo "make screenshots  a PASSED and a FAILED drill's HTML report, as PNGs in docs/screenshots"
	@echo "make build    sam build"
	@echo "make export-template BUCKET=<code bucket> REGION=<region> [REGIONAL=1]  plain CloudFormation for StackSets (docs/organization.md)"
	@echo "make sam-local  every sample event in events/ through sam local invoke, outcomes checked (Docker + moto)"

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || echo "note: $(LAMBDA_PYTHON) (the Lambda runtime) not found; $(VENV) and the tests use $$($(PYTHON) -V)"
	@# A venv of another Python (made before the Lambda runtime was chosen) is made anew: venv over
	@# it would mix two Pythons' site-packages.
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -V)" != "$$($(PYTHON) -V)" ]; then \
		echo "$(VENV) has $$($(BIN)/python -V); making it anew with $$($(PYTHON) -V)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# aws-sam-cli and cfn-lint pin their own boto3: they live in an environment of their own (the
# adapter tests run both: tests/adapters/test_export_template.py).
$(TOOLS)/.installed:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet aws-sam-cli cfn-lint
	touch $@

# checkov pins yet another boto3: a third environment.
$(CHECKOV)/.installed:
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

tools: $(TOOLS)/.installed $(CHECKOV)/.installed

postgres:
	@bash scripts/ensure-postgres.sh

chromium:
	@bash scripts/ensure-chromium.sh

demo: venv postgres
	$(BIN)/restoredrill demo $(if $(AURORA),--aurora) $(if $(FAULT),--fault $(FAULT))

test: venv $(TOOLS)/.installed postgres chromium
	$(BIN)/pytest

test-unit: venv
	$(BIN)/pytest tests/unit

test-adapters: venv $(TOOLS)/.installed
	$(BIN)/pytest tests/adapters

test-db: venv postgres
	$(BIN)/pytest tests/db

test-e2e: venv postgres chromium
	$(BIN)/pytest tests/e2e

lint: venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam validate --lint
	$(TOOLS)/bin/cfn-lint template.yaml
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

build: tools
	PYENV_VERSION=3.11.7:3.12.1 $(TOOLS)/bin/sam build

# StackSets with service-managed permissions refuse SAM's transform: the built stack's code goes
# to BUCKET (BUCKET-REGION with REGIONAL=1) and the template, transformed here, to
# .aws-sam/plain-template.json (docs/organization.md).
ifneq ($(filter export-template,$(MAKECMDGOALS)),)
ifeq ($(and $(BUCKET),$(REGION)),)
$(error usage: make export-template BUCKET=<code bucket> REGION=<region> [REGIONAL=1] [PREFIX=restoredrill])
endif
endif
export-template: venv build
	$(BIN)/python scripts/export_template.py --template .aws-sam/build/template.yaml \
		--bucket $(BUCKET) --region $(REGION) --prefix $(or $(PREFIX),restoredrill) \
		$(if $(REGIONAL),--regional) --output .aws-sam/plain-template.json

# Installs docker.io and debootstrap when missing (root), starts dockerd when none runs (and
# stops it after), builds the Lambda base image offline once, seeds moto and invokes every event.
sam-local: venv postgres build
	bash scripts/sam_local.sh

bench: venv postgres
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.cli
	$(BIN)/python -m bench.plan --scale 120 --tasks-per-invocation 20
	$(BIN)/python -m bench.wide
	$(BIN)/python -m bench.evidence

# 200 drills with random faults through one local cloud, every invariant checked (not in CI).
soak: venv postgres
	$(BIN)/python -m drillharness.soak --drills $(or $(DRILLS),200) --seed $(or $(SEED),1)

fleet: venv postgres
	$(BIN)/python -m drillharness.fleet

# Drills through the local cloud, their HTML reports rendered by headless Chromium.
screenshots: venv postgres chromium
	$(BIN)/python -m drillharness.screenshots

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .bench .bench-*

# ---------------------------------------------------------------- lock
# requirements.lock pins every dependency of pyproject.toml (all extras, every platform, Python
# 3.11 and later) with hashes; shared/requirements.txt, from which `sam build` fills the Lambda
# layer, is exported from it. Run after changing pyproject.toml's dependencies: the unit tests
# (tests/unit/test_lock.py) fail while the three disagree.
UV_VERSION ?= 0.13.9

.PHONY: lock
lock: venv
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet --output-file requirements.lock
	$(BIN)/python scripts/export_layer_requirements.py

# The drill report's JSON Schema, generated from its model (restoredrill.domain.report.model), written
# to schemas/drill-report/ and shared/restoredrill/schemas/; `make schemas CHECK=1` only checks.
.PHONY: schemas
schemas: venv
	$(BIN)/python scripts/generate-schemas.py $(if $(CHECK),--check)
