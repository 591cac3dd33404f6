# Quick start: `make demo` (set up, then serve the app on the bundled model) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: demo test setup system-packages bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# Debian packages the tests use: the real Fashion-MNIST and Chromium for the browser tests.
system-packages:
	./scripts/install-system-packages.sh

demo: setup
	$(PY) app.py

test: setup system-packages
	$(PY) -m pytest

bench: setup
	$(PY) bench/app_speed.py
