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

# Benchmarks need wrk (installed here when missing) and Redis/PostgreSQL (docs/benchmarks.md).
.PHONY: bench-ingest
bench-ingest: venv
	bash scripts/install-packages.sh wrk
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.bench_ingest

.PHONY: bench-sustained
bench-sustained: venv  ## wrk at stepped rates against ingest + the local runner
	bash scripts/install-packages.sh wrk
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.bench_sustained

.PHONY: profile-ingest
profile-ingest: venv  ## cProfile of exactly N votes in the production server
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.profile_ingest

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
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.bench_processor

.PHONY: bench-results
bench-results: venv  ## GET /results under load: cached vs uncached vs a bare endpoint
	bash scripts/install-packages.sh wrk
	bash scripts/ensure-services.sh
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
	bash scripts/install-packages.sh wrk
	bash scripts/ensure-services.sh
	$(PY) -m loadtest.report

.PHONY: security
# Least privilege, TLS, secrets, fuzzing and HTTP hardening tests (docs/security.md).
security: venv
	bash scripts/ensure-services.sh
	$(PY) -m pytest -m security
