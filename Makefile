# Set-up and checks for dynconform. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck layers unit browser api-baseline bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: run the conformance suite against the built-in reference implementation
demo: $(STAMP)
	$(BIN)/dynconform run

## test: lint, type-check, layer rules and the whole test suite
test: lint typecheck layers unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

## browser: headless Chromium and its driver for the HTML report test (Debian packages,
## installed when missing; point DYNCONFORM_CHROMIUM / DYNCONFORM_CHROMEDRIVER elsewhere to skip)
DYNCONFORM_CHROMIUM ?= /usr/bin/chromium
DYNCONFORM_CHROMEDRIVER ?= /usr/bin/chromedriver
export DYNCONFORM_CHROMIUM DYNCONFORM_CHROMEDRIVER
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@if [ ! -x "$(DYNCONFORM_CHROMIUM)" ] || [ ! -x "$(DYNCONFORM_CHROMEDRIVER)" ]; then \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver \
	  || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }; \
	fi

unit: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

## api-baseline: rewrite api/dynconform.json, the baseline CI checks dynconform's own API against
api-baseline: $(STAMP)
	$(BIN)/dynconform api snapshot src --package dynconform --tiers api/tiers.yaml \
	  -o api/dynconform.json

## bench: every benchmark, one after the other (about 15 minutes; needs PyPI for ai-dynamo)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_tap.py
	$(BIN)/python benchmarks/bench_run.py --dynamo-version 1.6.1
	$(BIN)/python benchmarks/stability_verdict.py pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1 --runs 2
	$(BIN)/python benchmarks/bench_mocker.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
