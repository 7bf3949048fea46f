# The two commands README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip
export PIP_CACHE_DIR ?= $(CURDIR)/.cache/pip

.PHONY: install install-test demo lint test unit bench docs clean

include deploy/kafka/kafka.mk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/careful-monitor demo

lint: install-test
	$(BIN)/ruff check careful_monitor tests benchmarks
	$(BIN)/mypy

test: install-test
	deploy/services.sh install   # promtool, amtool, prometheus, alertmanager from Debian when missing (root)
	$(BIN)/python -m pytest

docs: install-test   # README's screenshot of the alert page, from the demo in headless Chromium
	deploy/services.sh install
	$(BIN)/python docs/screenshot.py

unit: install-test
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/careful-monitor bench

clean:
	rm -rf $(VENV) .pytest_cache careful-demo
