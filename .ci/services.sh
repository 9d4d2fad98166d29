#!/usr/bin/env bash
# Install and start the services the test suite needs, idempotently: PostgreSQL (trust auth on 127.0.0.1 for the
# `postgres` user, database `test`) and Redis on 6379 without persistence. Safe to run again on a machine where they
# already run. Needs root (CI runs as root); on a laptop without root, `make test` skips those tests with a reason.
set -euo pipefail

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Spark (tests/test_spark.py, FS_TARGET=spark) runs pyspark in-process on a local JVM: Java 17.
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
# Headless Chromium renders the HTML monitoring report in tests/test_monitoring.py (and any browser test).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
  echo "services: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL: the newest installed cluster, trust auth for local TCP, started if down.
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
  pg_createcluster "$ver" main >/dev/null
fi
hba=/etc/postgresql/$ver/main/pg_hba.conf
if ! grep -q "fs-ci trust" "$hba"; then
  # Prepend: pg_hba.conf is first-match.
  { echo "host all all 127.0.0.1/32 trust # fs-ci trust"; echo "host all all ::1/128 trust # fs-ci trust"; \
    cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba" && chown postgres:postgres "$hba"
  pg_ctlcluster "$ver" main reload >/dev/null 2>&1 || true
fi
pg_ctlcluster "$ver" main start >/dev/null 2>&1 || true
for _ in $(seq 1 60); do
  pg_isready -h 127.0.0.1 -p 5432 -q && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432 || { echo "services: PostgreSQL did not start"; exit 1; }
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "create database test"

# Redis: no persistence, background.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
fi
for _ in $(seq 1 60); do
  redis-cli -p 6379 ping >/dev/null 2>&1 && break
  sleep 1
done
redis-cli -p 6379 ping >/dev/null || { echo "services: Redis did not start"; exit 1; }
echo "services: PostgreSQL $ver on 127.0.0.1:5432, Redis on 127.0.0.1:6379, $(java -version 2>&1 | head -1)"
