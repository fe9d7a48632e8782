# crm-sync developer entry points. `make demo` and `make test` are the two README commands.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv services demo test test-fast lint typecheck bench bench-quick plan quarantine dead-letters report clean

venv: $(VENV)/.installed

# Exact pins (requirements*.txt) first, then the project itself without re-resolving.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## Install, start the sandbox with the demo scenario and run crm_sync against it (SQLite staging).
demo: venv
	$(BIN)/python -m crm_sync.demo

## Start PostgreSQL and Redis when they are down (and install Chromium for the UI screenshot).
services:
	bash .ci/services.sh

## Lint, type-check and run every test (slow ones included), as CI does.
test: venv services lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## The quick loop while developing: no slow tests.
test-fast: venv
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

## Scale and efficiency benchmarks: print tables, write benchmarks/results/*.json.
bench: venv
	$(BIN)/python -m benchmarks.run_all

bench-quick: venv
	$(BIN)/python -m benchmarks.run_all --quick

## Show the plan of the latest crm_sync run (after `make demo`).
plan: venv
	@AIRFLOW_HOME=$${AIRFLOW_HOME:-$(CURDIR)/.demo/airflow} $(BIN)/crm-sync plan $(ARGS)

## Show what was kept back, with the reason (SYNC-5).
quarantine: venv
	@AIRFLOW_HOME=$${AIRFLOW_HOME:-$(CURDIR)/.demo/airflow} $(BIN)/crm-sync quarantine $(ARGS)

## Show writes a CRM rejected, with its error (retried by later runs; ARGS='--release' after a fix).
dead-letters: venv
	@AIRFLOW_HOME=$${AIRFLOW_HOME:-$(CURDIR)/.demo/airflow} $(BIN)/crm-sync dead-letters $(ARGS)

## Show the latest data-quality report's summary (ARGS='--format path' for the HTML file).
report: venv
	@AIRFLOW_HOME=$${AIRFLOW_HOME:-$(CURDIR)/.demo/airflow} $(BIN)/crm-sync report $(ARGS)

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache
