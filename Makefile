# Every target does its own set-up: a new machine needs only Python 3.11+, Go 1.26+ and git.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest
# pytest exits 5 when a selection collects no tests: not a failure for these targets.
NO_TESTS_OK := || { code=$$?; [ $$code -eq 5 ] && echo "pytest: no tests collected" || exit $$code; }

.PHONY: setup venv build test test-unit test-integration lint chaos bench clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

build: venv
	$(BIN)/resilience build

setup: venv build

test: setup
	$(PYTEST) tests $(NO_TESTS_OK)

test-unit: venv
	$(PYTEST) tests/unit $(NO_TESTS_OK)

test-integration: setup
	$(PYTEST) tests/integration $(NO_TESTS_OK)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

chaos: setup
	$(PYTEST) scenarios $(NO_TESTS_OK)

bench: setup
	$(BIN)/python benchmarks/cluster_up.py

clean:
	-$(BIN)/resilience cluster down --all
