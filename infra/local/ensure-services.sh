#!/usr/bin/env bash
# Starts the machine's Redis and PostgreSQL when they are installed but not
# running, so the tests find them. Tests fall back to an embedded Redis of
# their own when no Redis server is installed at all; the PostgreSQL tests
# skip outside CI when there is no server (and fail under CI).
set -u
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    mkdir -p /tmp/zaqar-ci-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/zaqar-ci-redis --logfile /tmp/zaqar-ci-redis/redis.log || true
  fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
    for _ in $(seq 1 20); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  fi
fi
exit 0
