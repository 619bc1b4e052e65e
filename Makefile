# Every target does its own set-up: a new machine needs only Python 3.11+, Go 1.26+ and git.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest
# pytest exits 5 when a selection collects no tests: not a failure for these targets.
NO_TESTS_OK := || { code=$$?; [ $$code -eq 5 ] && echo "pytest: no tests collected" || exit $$code; }

# The chaos run: options for pytest (profile, recoveries, provider), e.g. make chaos CHAOS_ARGS="--profile nightly".
CHAOS_ARGS ?= --profile quick
# xdist workers of `make chaos`, one local cluster each (docs/scale-out.md has the figures behind the default).
CHAOS_WORKERS ?= 2
SLO ?= scenarios/slo.yaml
# Outputs go to out/, apart from the code (resilience gate and report read the same defaults).
OUT := out
RESULTS := $(OUT)/allure-results

.PHONY: setup venv build build-test build-chaos allure test test-unit test-integration lint chaos report gate bench clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[harness,dev]'
	touch $@

# What a cluster needs; build-test and build-chaos add what the tests / the chaos suite need (clusters/pins.py).
build: venv
	$(BIN)/resilience build

build-test: venv
	$(BIN)/resilience build --for test

build-chaos: venv
	$(BIN)/resilience build --for chaos

setup: venv build

# The pinned Allure CLI (npm ci into allure-cli/ of the build cache); `resilience report` also installs it when first needed.
allure: venv
	$(BIN)/python -c 'from reports.htmlreport import ensure_allure; ensure_allure(None, print)'

# Unit tests on two xdist workers (they share no cluster), then the integration tests on TEST_WORKERS workers,
# one local cluster each, shared by every test the worker runs (they mostly wait on Flux, not on the CPUs).
# Each prints its 20 slowest tests.
TEST_WORKERS ?= 3
test: build-test
	$(PYTEST) tests -m "not integration" -n 2 --durations=20 $(NO_TESTS_OK)
	$(PYTEST) tests -m integration -n $(TEST_WORKERS) --dist load --durations=20 $(NO_TESTS_OK)

test-unit: venv
	$(PYTEST) tests/unit -m "not integration" $(NO_TESTS_OK)

test-integration: build-test
	$(PYTEST) tests/integration $(NO_TESTS_OK)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Scenarios, then the HTML report and the release gate; exits with the gate's verdict.
chaos: build-chaos
	-$(PYTEST) scenarios -n $(CHAOS_WORKERS) --slo $(SLO) $(CHAOS_ARGS) --alluredir $(RESULTS) --clean-alluredir \
		--junitxml $(OUT)/junit.xml
	$(BIN)/resilience report
	$(BIN)/resilience gate --slo $(SLO); code=$$?; \
		echo "HTML report: $(CURDIR)/$(OUT)/allure-report/index.html (serve it: python3 -m http.server -d $(OUT)/allure-report)"; \
		exit $$code

report: venv
	$(BIN)/resilience report

gate: venv
	$(BIN)/resilience gate --slo $(SLO)

bench: setup
	$(BIN)/python benchmarks/cluster_up.py

clean:
	-$(BIN)/resilience cluster down --all
