#!/usr/bin/env bash
# Benchmark topics as tables: point lookups of one key with and without the
# key index (streamlog.latest(topic, key)), streamlog.latest(topic), and
# what key.index costs produce (SQL set-based, and Kafka through
# librdkafka), each next to a plain table with a btree on the key, on a
# private, throw-away PostgreSQL 15 server.
#
#   bench/tables/run.sh [--quick]
#
# Full: 10M records over 1M keys; --quick: 1M records over 100k keys.  The
# server is initialised in a temporary directory, listens on free loopback
# ports, and is stopped and removed on exit, whatever happens.  PGBIN
# chooses the PostgreSQL installation (default /usr/lib/postgresql/15/bin).
# The results table is printed and written to
# bench/results/tables-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick -- "$@"
bench_server_prepare tables
bench_server_start

mkdir -p "$bench/results"
"$python" "$here/tbench.py" ${opts[@]+"${opts[@]}"} --brokers "127.0.0.1:$kport" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/tables-latest.txt"
