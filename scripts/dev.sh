#!/usr/bin/env bash
# `make dev`: the whole pipeline on this machine, in the foreground, until Ctrl-C.
#
# 1. virtualenv .venv with the project installed (re-installed when pyproject.toml changes);
# 2. the Debian packages that are missing (scripts/install-packages.sh: Redis, PostgreSQL, wrk);
#    Redis at $REDIS_URL and PostgreSQL at $DATABASE_URL (defaults: the loopback ones); when one
#    does not answer, a private server is started with its data under .dev/ (kept between
#    runs), on the default port if free, else on a free port (the URL is adjusted);
# 3. the database of DATABASE_URL is created if missing and migrated;
# 4. ingest on http://127.0.0.1:8000 and the local KEDA runner on keda/scaledjob.yaml.
# Ctrl-C stops the runner first (running Jobs finish their batch or are terminated within their
# grace period), then ingest, then any server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.dev
VENV=$ROOT/.venv
PY=$VENV/bin/python
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/votes}
export HOST=127.0.0.1 PORT=${PORT:-8000} LOG_FORMAT=${LOG_FORMAT:-text}
PIDS=()        # processes to stop on exit, in reverse start order
PG_STARTED=""  # data directory of a PostgreSQL this script started

say() { printf 'dev: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need() {  # need BINARY DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    die "'$1' not found; install it with: sudo apt-get install -y $2 (then run make dev again)"
}

ensure_venv() {
  need python3 python3-venv
  if [[ ! -x $PY ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed; install: sudo apt-get install -y python3-venv"
  fi
  if [[ ! -f $VENV/.installed || pyproject.toml -nt $VENV/.installed ]]; then
    say "installing the project into $VENV (log: .dev/pip.log)"
    mkdir -p "$DEV"
    { "$PY" -m pip install --quiet --upgrade pip && "$PY" -m pip install --quiet -e '.[dev]'; } \
      >"$DEV/pip.log" 2>&1 || { tail -n 20 "$DEV/pip.log" >&2; die "pip install failed"; }
    touch "$VENV/.installed"
  fi
}

url_part() { "$PY" scripts/devservices.py url-part "$1" "$2"; }
port_free() { "$PY" scripts/devservices.py port-free "$1"; }
free_port() { "$PY" scripts/devservices.py free-port; }

ensure_redis() {
  local rc=0
  "$PY" scripts/devservices.py redis-ping "$REDIS_URL" || rc=$?
  if [[ $rc == 0 ]]; then say "Redis answers at $(url_part "$REDIS_URL" redacted)"; return; fi
  [[ $rc == 2 ]] && die "fix REDIS_URL (the server there refuses it), or unset it"
  need redis-server redis-server
  local port
  port=$(url_part "$REDIS_URL" port)
  port_free "$port" || port=$(free_port)
  mkdir -p "$DEV/redis"
  say "starting redis-server on 127.0.0.1:$port (data in .dev/redis, append-only file on)"
  setsid redis-server --bind 127.0.0.1 --port "$port" --dir "$DEV/redis" \
    --appendonly yes --appendfsync everysec --logfile "$DEV/redis/redis.log" &
  PIDS+=($!)
  REDIS_URL=$(url_part "$REDIS_URL" "with-port=$port")
  "$PY" scripts/devservices.py wait-redis "$REDIS_URL" || die "redis-server did not start; see .dev/redis/redis.log"
}

pg_bin() {  # the directory holding initdb/pg_ctl: PATH first, then Debian's versioned dirs
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $dir && -x $dir/initdb ]] ||
    die "'initdb' not found; install it with: sudo apt-get install -y postgresql (then run make dev again)"
  echo "$dir"
}

as_pg_user() {  # initdb and postgres refuse to run as root: use the postgres account then
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (apt-get install -y postgresql creates it)"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_postgres() {
  local rc=0 bin port data=$DEV/pg
  "$PY" scripts/devservices.py pg-ping "$DATABASE_URL" || rc=$?
  if [[ $rc == 0 ]]; then say "PostgreSQL answers at $(url_part "$DATABASE_URL" redacted)"; return; fi
  [[ $rc == 2 ]] && die "fix DATABASE_URL (the server there refuses it), or unset it"
  bin=$(pg_bin)
  port=$(url_part "$DATABASE_URL" port)
  port_free "$port" || port=$(free_port)
  mkdir -p "$data/socket"
  [[ $(id -u) == 0 ]] && chown -R postgres "$data"
  if [[ ! -f $data/db/PG_VERSION ]]; then
    say "initdb .dev/pg/db (user postgres, trust on loopback)"
    as_pg_user "$bin/initdb" -D "$data/db" -U postgres --auth=trust --encoding=UTF8 >"$data/initdb.log" ||
      die "initdb failed; see .dev/pg/initdb.log"
  fi
  say "starting PostgreSQL on 127.0.0.1:$port (data in .dev/pg/db)"
  as_pg_user setsid "$bin/pg_ctl" -D "$data/db" -l "$data/postgres.log" -w \
    -o "-h 127.0.0.1 -p $port -k $data/socket" start >/dev/null ||
    die "PostgreSQL did not start; see .dev/pg/postgres.log"
  PG_STARTED="$bin/pg_ctl -D $data/db"
  DATABASE_URL=$(url_part "$DATABASE_URL" "with-port=$port")
}

stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [[ -n $PG_STARTED ]]; then as_pg_user $PG_STARTED -m fast stop >/dev/null || true; fi
  say "stopped"
}

main() {
  # Redis, PostgreSQL and wrk from Debian when their commands are missing (a fresh machine).
  bash scripts/install-packages.sh || die "could not install the missing Debian packages"
  ensure_venv
  trap stop_all EXIT
  trap 'exit 0' INT TERM  # a requested stop is a clean one
  ensure_redis
  ensure_postgres
  export REDIS_URL DATABASE_URL
  "$PY" scripts/devservices.py create-database "$DATABASE_URL"
  "$PY" -m processor migrate
  port_free "$PORT" || die "port $PORT is in use: stop what listens there, or set PORT"
  setsid "$PY" -m ingest &
  PIDS+=($!)
  "$PY" scripts/devservices.py wait-http "http://$HOST:$PORT/healthz" || die "ingest did not start"
  setsid "$PY" -m processor.scaledjob keda/scaledjob.yaml &
  PIDS+=($!)
  say "pipeline up: ingest http://$HOST:$PORT, Redis $(url_part "$REDIS_URL" redacted), PostgreSQL $(url_part "$DATABASE_URL" redacted)"
  say "try: curl -si -X POST http://$HOST:$PORT/vote -H 'content-type: application/json' -d '{\"option\": \"cats\"}'"
  say "Ctrl-C stops everything"
  wait -n "${PIDS[@]}" || true
  die "a component exited on its own (see its output above)"
}

main "$@"
