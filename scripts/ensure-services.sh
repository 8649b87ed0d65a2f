#!/usr/bin/env bash
# Makes sure the machine's own Redis (6379) and PostgreSQL (5432) answer on loopback, starting
# them with the machine's service commands when they do not. Used by CI and `make test`.
set -euo pipefail

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

for _ in $(seq 1 50); do
  if redis_up && pg_up; then exit 0; fi
  sleep 0.2
done
redis_up || echo "ensure-services: Redis does not answer on 127.0.0.1:6379" >&2
pg_up || echo "ensure-services: PostgreSQL does not answer on 127.0.0.1:5432" >&2
exit 1
