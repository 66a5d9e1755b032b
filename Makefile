# harmwatch — the two commands a fresh machine needs:
#   make demo   install everything, start Kafka + Elasticsearch, run the demo pipeline, serve the UI
#   make test   install everything, start what the tests need, run the whole suite, stop it again
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: install test-tools demo test services-up services-down lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed (apt-get install python3.11 python3.11-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

## install: the Python environment, the converted text encoder and compiled translations
install: $(STAMP)
	$(BIN)/harmwatch setup

## test-tools: what only the test suite needs (headless Chromium for browser tests,
## the Compose client to validate docker-compose.yml)
TEST_APT := chromium chromium-driver docker-compose
test-tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v docker-compose >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_APT) >/dev/null; }

services-up: install
	$(BIN)/harmwatch services up

services-down:
	$(BIN)/harmwatch services down

## demo: everything, end to end, then the review UI in the foreground (Ctrl-C stops it)
demo: install
	$(BIN)/harmwatch demo

## test: start the services unless they already run, run the suite, stop what was started
test: install test-tools
	@if $(BIN)/harmwatch services status >/dev/null 2>&1; then started=0; else started=1; \
	  $(BIN)/harmwatch services up || exit 1; fi; \
	status=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$started = 1 ]; then $(BIN)/harmwatch services down; fi; \
	exit $$status

lint: install
	$(BIN)/ruff check .

## bench: every benchmark; each appends its figures to bench/RESULTS.md
bench: install services-up
	for b in bench/bench_*.py; do $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

clean: services-down
	rm -rf var
