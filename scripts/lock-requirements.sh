#!/usr/bin/env bash
# Regenerate requirements/runtime.lock and requirements/dev.lock from pyproject.toml: every
# package pinned, with the sha256 of each of its files on PyPI, for every platform
# (--universal) on Python 3.11. The Dockerfile installs runtime.lock; CI (.ci/run) and
# `make venv` install dev.lock, which is constrained to runtime.lock's versions.
# Run it after changing pyproject.toml's dependencies (tests/test_locks.py fails until then);
# extra arguments go to uv, e.g. `--upgrade` or `--upgrade-package starlette`.
# The tool is uv, pinned here and installed into a cache directory of its own on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_version=0.13.9
tool="${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/uv-$uv_version"
if [[ ! -x "$tool/bin/uv" ]]; then
  python3 -m venv "$tool"
  "$tool/bin/pip" install --quiet "uv==$uv_version"
fi

common=(
  --generate-hashes --universal --python-version 3.11 --quiet
  --custom-compile-command "bash scripts/lock-requirements.sh"
  "$@"
)
"$tool/bin/uv" pip compile pyproject.toml "${common[@]}" -o requirements/runtime.lock
"$tool/bin/uv" pip compile pyproject.toml --extra dev -c requirements/runtime.lock \
  "${common[@]}" -o requirements/dev.lock
