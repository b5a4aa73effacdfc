#!/usr/bin/env bash
# Benchmark streamlog's consumer groups (SQL streamlog.consume next to PgQ
# and a SKIP LOCKED queue table; librdkafka consumer groups: drain rate and
# rebalance times) on a private, throw-away PostgreSQL 15 server.
#
#   bench/groups/run.sh [--quick] [--offsets-topic-only]
#
# --quick runs reduced sizes; --offsets-topic-only runs only the section
# that measures offset commits with and without __consumer_offsets.  The server is initialised in a temporary
# directory, listens (SQL and Kafka) on free loopback ports, runs with
# streamlog.group_initial_rebalance_delay = 0, and is stopped and removed on
# exit, whatever happens.  The results table is printed and written to
# bench/results/groups-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick --offsets-topic-only -- "$@"
bench_server_prepare gbench
[ -f "$("$pgbin/pg_config" --sharedir)/extension/pgq.control" ] || {
	echo "run.sh: PgQ is not installed (apt-get install postgresql-15-pgq3)" >&2; exit 1; }

bench_build_client slgroup "$here/slgroup.c" -lpthread

# The first rebalance of a new group does not wait for more members, so that
# the rebalance times measure the protocol, not this delay (default 3 s)
bench_server_start "streamlog.group_initial_rebalance_delay = 0"

mkdir -p "$bench/results"
PGBIN=$pgbin "$python" "$here/gbench.py" ${opts[@]+"${opts[@]}"} \
	--brokers "127.0.0.1:$kport" --slgroup "$tmp/slgroup" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/groups-latest.txt"
