# Quick start: `make demo` (set up, then serve the app on the bundled model) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: demo test test-fast lint style setup system-packages bench

# The pinned requirements, then this project in editable mode (no sys.path edits anywhere).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

setup: $(VENV)/.installed

# Debian packages the tests use: the real Fashion-MNIST and Chromium for the browser tests.
system-packages:
	./scripts/install-system-packages.sh

demo: setup
	$(PY) app.py

test: setup system-packages
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

# The inner loop: everything but the slow, browser and Hub tests (under a minute).
test-fast: setup
	$(PY) -m pytest -m "not slow and not browser and not hub"

# What CI checks; `make style` fixes what it can (run it before committing)
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

style: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) bench/app_speed.py
