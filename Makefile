# Developer entry points. `make test` is the test command README.md gives and .ci/run calls.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv install lint test

venv: $(PY)
$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'

install: venv

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict ingest processor

test: venv
	bash scripts/ensure-services.sh
	$(PY) -m pytest

.PHONY: bench-processor
bench-processor: venv
	$(PY) loadtest/bench_processor.py
