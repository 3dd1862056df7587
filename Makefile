# make run  : set everything up and run coldchain with demo data
# make test : set everything up (apt packages too) and run ruff, mypy and every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests start for real.
APT_PACKAGES := clickhouse-server chromium fonts-wqy-zenhei prometheus prometheus-alertmanager

.PHONY: run test lint typecheck pytest system-deps schema clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/coldchain up --demo

test: $(STAMP) system-deps lint typecheck pytest

# A removed package whose config files remain still answers `dpkg -s`: ask for the status.
installed = dpkg-query -W -f='$${Status}' $(1) 2>/dev/null | grep -q 'install ok installed'

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do $(call installed,$$p) || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi; \
	for p in $(APT_PACKAGES); do $(call installed,$$p) || { echo "missing Debian package $$p"; exit 1; }; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy schemas pipeline connectors coldchain

pytest: $(STAMP)
	$(BIN)/pytest --durations=15

# Rewrites schemas/events.schema.json from the models (a test keeps it current).
schema: $(STAMP)
	$(BIN)/python -m schemas.export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
