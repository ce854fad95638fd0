# Nimble OKE — runbook. Every target is a thin wrapper over the `nimble` CLI.
# Two commands on a fresh machine: `make demo` and `make test`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NIMBLE := $(BIN)/nimble
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup demo test lint typecheck unit plan up status smoke bench down doctor troubleshoot cost sweep clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(NIMBLE) demo $(ARGS)

test: setup lint typecheck unit

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
