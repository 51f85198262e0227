# Two commands: `make run` (the app locally) and `make test` (the whole suite).
# Everything they need is installed here, into the repo (.venv, node_modules), on first use;
# `make test` also installs Debian's Chromium for the browser test (as root, like CI).
SHELL := /bin/bash
# The interpreter: PYTHON if given (a command, a path, or a version such as PYTHON=3.13, looked
# up on PATH, then under pyenv), else the newest supported python3.1x on PATH. pyenv's are used
# only when asked for: PATH is what the user chose to run, and the default stays the one CI and
# the other venvs were made with. Each version gets its venv: .venv for the default, .venv-3.13 ...
SUPPORTED_PYTHONS := 3.13 3.12 3.11
on_path = $(shell python$(1) -c '' 2>/dev/null && command -v python$(1))
in_pyenv = $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(1)*/bin/python))
DEFAULT_VERSION := $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(if $(call on_path,$(v)),$(v))))
PYTHON ?= $(if $(DEFAULT_VERSION),python$(DEFAULT_VERSION))
PYTHON_CMD := $(if $(filter 3.%,$(PYTHON)),$(or $(call on_path,$(PYTHON)),$(call in_pyenv,$(PYTHON))),$(PYTHON))
PY_VERSION := $(if $(PYTHON_CMD),$(shell $(PYTHON_CMD) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
VENV ?= $(if $(filter $(PY_VERSION),$(DEFAULT_VERSION)),.venv,.venv-$(PY_VERSION))
PY := $(VENV)/bin/python
# Playwright drives Debian's Chromium: a browser download is not possible here. Liberation and
# Noto Color Emoji make the page (and its screenshot) look as it does on a desktop.
BROWSER_PACKAGES := chromium fonts-liberation fonts-noto-color-emoji

.PHONY: run test check deps browser clean package

# e.g. make run RUN_ARGS="--webchat-port 4000"
run: deps
	@echo "make run: Python $(PY_VERSION) ($(PYTHON_CMD)), $(VENV)"
	$(PY) -m devtools.run $(RUN_ARGS)

# Lint and types first (make check), so a ruff or mypy failure fails CI like a test.
# e.g. make test PYTHON=3.13 PYTEST_ARGS="tests/functions"
test: check browser
	@echo "make test: Python $(PY_VERSION) ($(PYTHON_CMD)), $(VENV)"
	$(PY) -m pytest $(PYTEST_ARGS)

# Lint, format and types (settings in pyproject.toml).
check: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy proactive_bot
	$(PY) -m mypy devtools tests bench

deps: $(VENV)/.installed node_modules/.installed

# The Teams app package (build/appPackage.zip), the bot id filled in:
#   make package BOT_APP_ID=<guid>   or, after `azd up`:   make package BOT_APP_ID=$$(azd env get-value BOT_APP_ID)
package: $(VENV)/.installed
	BOT_APP_ID="$(BOT_APP_ID)" $(PY) -m devtools.app_package --out build/appPackage.zip

browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || { \
	  apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PACKAGES); }

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(filter $(PY_VERSION),$(SUPPORTED_PYTHONS))" || { echo "$(if $(PY_VERSION),Python $(PY_VERSION) ($(PYTHON_CMD)) is not one of $(SUPPORTED_PYTHONS),No Python found for PYTHON=$(PYTHON)): pass PYTHON=python3.1x, or PYTHON=3.1x to find it on PATH or in pyenv" >&2; exit 1; }
	test -x $(PY) || $(PYTHON_CMD) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf .venv .venv-3.* node_modules .azurite .pytest_cache test-artifacts build
