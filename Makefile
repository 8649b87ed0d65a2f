# Developer entry points. `make test` is the test command README.md gives and .ci/run calls.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv install lint test

# The locked versions (requirements/dev.lock, hashes checked), as CI installs them; again
# whenever the lock changes (the stamp file is older then).
venv: $(VENV)/.dev-lock-installed
$(VENV)/.dev-lock-installed: requirements/dev.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/dev.lock
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: venv

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/lint-imports

test: venv
	bash scripts/ensure-services.sh
	$(PY) -m pytest -m "not cluster"

# The chart on the real control plane with the real KEDA operator (docs/real-control-plane.md).
# The first run builds Kubernetes and KEDA from upstream (~35 min on 2 cores; cached by version).
.PHONY: cluster-up cluster-down cluster-test
cluster-up: venv
	bash scripts/ensure-services.sh
	bash scripts/cluster-up.sh

cluster-down:
	bash scripts/cluster-down.sh

cluster-test: venv
	bash scripts/ensure-services.sh
	bash scripts/install-helm.sh >/dev/null
	bash scripts/build-control-plane.sh >/dev/null
	$(PY) -m pytest -m cluster

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
# The chart's checks alone: helm lint/template with helm 3 and 4, manifest validation, and the
# rendered scripts and settings run against the real Redis and PostgreSQL (helm test, ingest
# behind an Ingress, the bundled Redis's ACL and maxmemory).
helm-check: venv
	bash scripts/install-helm.sh
	bash scripts/install-prometheus-crds.sh
	bash scripts/ensure-services.sh
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

.PHONY: bench-durability
# What each ACK_DURABILITY level costs against memory (docs/guarantees.md has the figures).
bench-durability: venv
	bash scripts/install-packages.sh redis-server wrk
	$(PY) -m loadtest.bench_durability

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
