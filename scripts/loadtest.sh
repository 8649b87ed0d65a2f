#!/usr/bin/env bash
# `make loadtest USERS=200 SPAWN_RATE=50 DURATION=60s`: a headless locust run against the local
# pipeline (reused when `make dev` answers on :8000 or INGEST_URL is set, else started for the
# run and stopped after), progress every 2 s, then reconciliation and a summary. Exit status is
# non-zero on failed requests or a failed reconciliation. Extra arguments go to
# `python -m loadtest.run` (e.g. `--start`, `--polling-interval 1`, `-- --think-time 0,0.1`).
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--users "${USERS:-50}" --spawn-rate "${SPAWN_RATE:-10}" --duration "${DURATION:-60s}")
if [[ -n "${INGEST_URL:-}" ]]; then
    args+=(--ingest-url "$INGEST_URL")
fi
exec "${VENV:-.venv}/bin/python" -m loadtest.run "${args[@]}" "$@"
