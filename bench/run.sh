#!/usr/bin/env bash
# Benchmark streamlog against plain tables and PgQ on a private, throw-away
# PostgreSQL 15 server.
#
#   bench/run.sh [--quick]
#
# The server is initialised in a temporary directory, listens on a free
# loopback port and is stopped and removed on exit, whatever happens.  The
# results table is printed and written to bench/results/latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

# shellcheck source=bench/server.sh
. "$here/server.sh"
bench_options --quick -- "$@"
bench_server_prepare bench
[ -x /usr/bin/pgbench ] || { echo "run.sh: /usr/bin/pgbench not found" >&2; exit 1; }
[ -f "$("$pgbin/pg_config" --sharedir)/extension/pgq.control" ] || {
	echo "run.sh: PgQ is not installed (apt-get install postgresql-15-pgq3)" >&2; exit 1; }
# the SQL benchmark needs no Kafka listener
bench_server_start "streamlog.port = 0"

mkdir -p "$here/results"
PGBIN=$pgbin "$python" "$here/bench.py" ${opts[@]+"${opts[@]}"} --data-dir "$data" --server-log "$log" \
	--output "$here/results/latest.txt"
