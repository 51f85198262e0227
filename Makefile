# Two commands: `make run` (the app locally) and `make test` (the whole suite).
# Everything they need is installed here, into the repo (.venv, node_modules), on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test deps clean

run: deps
	$(PY) -m devtools.run

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache
