# Two commands: `make run` (the app locally) and `make test` (the whole suite).
# Everything they need is installed here, into the repo (.venv, node_modules), on first use;
# `make test` also installs Debian's Chromium for the browser test (as root, like CI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Playwright drives Debian's Chromium: a browser download is not possible here. Liberation and
# Noto Color Emoji make the page (and its screenshot) look as it does on a desktop.
BROWSER_PACKAGES := chromium fonts-liberation fonts-noto-color-emoji

.PHONY: run test check deps browser clean package

# e.g. make run RUN_ARGS="--webchat-port 4000"
run: deps
	$(PY) -m devtools.run $(RUN_ARGS)

test: deps browser
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
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache test-artifacts build
