#!/usr/bin/env bash
# A throwaway PostgreSQL server on a local Unix socket, for the multi-worker tests against a real database.
#   url=$(bash scripts/test_postgres.sh start)   # installs postgresql from Debian's packages if missing
#   GDL_TEST_POSTGRES=$url pytest tests/test_bench_reliability.py
#   bash scripts/test_postgres.sh stop
# No TCP port is opened (listen_addresses=''); authentication is `trust` on the socket only. As root, the server
# runs as the `postgres` user that the package creates. GDL_PG_DIR sets the folder (data, socket, log).
set -euo pipefail
dir="${GDL_PG_DIR:-/tmp/gdl-postgres}"
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
bin_dir() { dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)"; }

case "${1:-start}" in
start)
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        echo "[postgres] installing postgresql from the distribution's packages" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    bin="$(bin_dir)"
    [ -f "$dir/data/postmaster.pid" ] && as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_server "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses='' -k $dir -c max_connections=100" start >&2
    as_server "$bin/createdb" -h "$dir" -U postgres gdlbench
    echo "postgresql://postgres@/gdlbench?host=$dir"
    ;;
stop)
    as_server "$(bin_dir)/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    ;;
*)
    echo "usage: bash scripts/test_postgres.sh start|stop" >&2
    exit 2
    ;;
esac
