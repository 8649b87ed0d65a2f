#!/usr/bin/env bash
# Installs the Debian packages the pipeline, its tests and its benchmarks need, when their
# commands are missing: Redis, PostgreSQL, wrk, FUSE 3 (the node-crash simulation of
# tests/ingest/test_node_crash.py). A fresh machine has none of the services (the
# project's machines start nothing), so `make dev`, `make test` and CI all come through here.
# Unattended (reads no stdin); a machine that has everything returns without touching apt.
#   usage: install-packages.sh            everything below
#          install-packages.sh CMD ...    only the packages providing these commands
set -euo pipefail

# command -> Debian package
declare -A PACKAGE=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [pg_ctlcluster]=postgresql
  [initdb]=postgresql
  [wrk]=wrk
  [fusermount3]=fuse3
)

missing=()
for cmd in "${@:-redis-server redis-cli pg_ctlcluster initdb wrk fusermount3}"; do
  for c in $cmd; do
    if [[ $c == initdb ]]; then
      # initdb lives under /usr/lib/postgresql/<major>/bin, not on PATH.
      compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && continue
    elif command -v "$c" >/dev/null 2>&1; then
      continue
    fi
    missing+=("${PACKAGE[$c]:?install-packages: no package known for $c}")
  done
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  echo "install-packages: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-packages: installing ${missing[*]} from Debian" >&2
apt-get update -q </dev/null >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null
# Debian's packages start their services through systemd, which these machines do not run;
# ensure-services.sh starts them itself.
