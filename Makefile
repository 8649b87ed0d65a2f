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
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

test: venv
	bash scripts/ensure-services.sh
	$(PY) -m pytest

.PHONY: bench-ingest
bench-ingest: venv
	$(PY) -m loadtest.bench_ingest

.PHONY: helm-check
# The chart's checks alone: helm lint/template with helm 3 and 4, manifest validation.
helm-check: venv
	bash scripts/install-helm.sh
	bash scripts/install-prometheus-crds.sh
	$(PY) -m pytest -m helm

# The whole pipeline locally (ingest on :8000 + the local KEDA runner); Ctrl-C stops it.
.PHONY: dev
dev:
	bash scripts/dev.sh

.PHONY: bench-processor
bench-processor: venv
	$(PY) -m loadtest.bench_processor

.PHONY: bench-results
bench-results: venv  ## GET /results under load: cached vs uncached vs a bare endpoint
	$(PY) -m loadtest.bench_results

# Load test and benchmark report (docs/benchmarks.md).
USERS ?= 50
SPAWN_RATE ?= 10
DURATION ?= 60s

.PHONY: loadtest report

loadtest: venv
	bash scripts/ensure-services.sh
	USERS=$(USERS) SPAWN_RATE=$(SPAWN_RATE) DURATION=$(DURATION) bash scripts/loadtest.sh

report: venv
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.report

.PHONY: security
# Least privilege, TLS, secrets, fuzzing and HTTP hardening tests (docs/security.md).
security: venv
	bash scripts/ensure-services.sh
	$(PY) -m pytest -m security

.PHONY: mutation
# Mutation testing, on demand, never in CI (docs/development.md#mutation-testing): mutmut over
# the modules of [tool.mutmut] in pyproject.toml, against the real Redis and PostgreSQL. A whole
# run takes hours; MUTANTS narrows it, e.g. make mutation MUTANTS='processor.entries.*'.
# Survivors and their diffs: .mutation/report.txt.
MUTANTS ?=
mutation: venv
	bash scripts/ensure-services.sh
	$(VENV)/bin/mutmut run $(foreach pattern,$(MUTANTS),'$(pattern)')
	$(PY) scripts/mutation-report.py
