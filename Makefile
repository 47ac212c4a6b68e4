# The two set-up commands of the README:
#   make demo   - create .venv, install everything, run the main job on the embedded default
#   make test   - create .venv, install everything, run the whole test suite
.PHONY: venv demo test test-fast lint bench

VENV ?= .venv
PY := $(VENV)/bin/python

venv:
	bash scripts/setup_venv.sh

demo: venv
	$(PY) -m codegym demo

test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow and not docker and not ray"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: venv
	$(PY) bench/executor.py
	$(PY) bench/env_step.py
