#!/usr/bin/env bash
# Makes sure the machine's own Redis (6379) and PostgreSQL (5432) answer on loopback, starting
# them with the machine's service commands when they do not, after installing the Debian packages
# that are missing (scripts/install-packages.sh). Used by CI, `make test` and `make dev`.
set -euo pipefail

bash "$(dirname "$0")/install-packages.sh"

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "ensure-services: '$1' not found; install it with: apt-get install -y $2" >&2
    exit 1
  }
}

if ! redis_up; then
  need redis-server redis-server
  echo "ensure-services: starting redis-server on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! pg_up; then
  need pg_ctlcluster postgresql
  echo "ensure-services: starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi

# Debian's cluster asks every loopback client for a password. The tests, `make dev` and the
# benchmarks connect as the `postgres` superuser without one (TEST_PG_ADMIN_URL, DATABASE_URL
# defaults), as on a developer's machine; only that user is trusted, and only on loopback, so
# the roles the security tests create keep their password checks.
trust_loopback_superuser() {
  local hba
  hba=$(su postgres -c "psql -XAtc 'show hba_file'" 2>/dev/null) || return 0
  grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" && return 0
  echo "ensure-services: trusting the postgres superuser on loopback ($hba)"
  sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  su postgres -c "psql -XAtc 'select pg_reload_conf()'" >/dev/null
}

for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
pg_up && trust_loopback_superuser

for _ in $(seq 1 50); do
  if redis_up && pg_up; then exit 0; fi
  sleep 0.2
done
redis_up || echo "ensure-services: Redis does not answer on 127.0.0.1:6379" >&2
pg_up || echo "ensure-services: PostgreSQL does not answer on 127.0.0.1:5432" >&2
exit 1
