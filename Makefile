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

# `make bench-peers`: Evidently and nannyml, each in a venv of its own (they need pandas/plotly/... that the
# service does not), pinned by benchmarks/peers/*-requirements.txt, for `careful-monitor bench --peers`.
# Never part of CI or the tests. A stamp per venv keeps it idempotent; NML_DISABLE_USAGE_LOGGING and
# DO_NOT_TRACK keep the peers' usage analytics off during the install's import check.
PEERS_DIR ?= .cache/peers
PEERS     := evidently nannyml

.PHONY: bench-peers
bench-peers: $(PEERS:%=$(PEERS_DIR)/%/.installed)

$(PEERS_DIR)/%/.installed: benchmarks/peers/%-requirements.txt
	test -x $(PEERS_DIR)/$*/bin/python || $(PYTHON) -m venv $(PEERS_DIR)/$*
	$(PEERS_DIR)/$*/bin/pip install -q --disable-pip-version-check -r $<
	NML_DISABLE_USAGE_LOGGING=1 DO_NOT_TRACK=1 ITERATIVE_DO_NOT_TRACK=1 $(PEERS_DIR)/$*/bin/python -c 'import $*'
	touch $@

# `make test-embeddings`: the optional semantic embeddings (`careful-monitor[embeddings]`: torch, several GB) in
# a venv of their own, and their opt-in tests (tests/optional), offline. Never part of `make test` or CI: without
# CAREFUL_EMBEDDINGS_TEST=1 pytest does not collect tests/optional. One torch thread unless OMP_NUM_THREADS says.
EMB_VENV ?= .cache/embeddings-venv

.PHONY: test-embeddings
test-embeddings: $(EMB_VENV)/.installed
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CAREFUL_EMBEDDINGS_TEST=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	  $(EMB_VENV)/bin/python -m pytest -p no:cacheprovider -s -q tests/optional

$(EMB_VENV)/.installed: pyproject.toml
	test -x $(EMB_VENV)/bin/python || $(PYTHON) -m venv $(EMB_VENV)
	$(EMB_VENV)/bin/pip install -q --disable-pip-version-check -e '.[embeddings,test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache careful-demo
