#!/usr/bin/env bash
# Benchmark streamlog's Kafka protocol (librdkafka clients) on a private,
# throw-away PostgreSQL 15 server.
#
#   bench/kafka/run.sh [--quick] [--profile] [--produce-only]
#
# --quick runs reduced sizes; --profile also samples the broker workers with
# perf during the produce, consume and latency runs and prints their top
# symbols.  The server is initialised in a temporary directory, listens (SQL
# and Kafka) on free loopback ports and is stopped and removed on exit,
# whatever happens.  The results table is printed and written to
# bench/results/kafka-latest.txt.
#
# --produce-only runs the produce sections alone, to compare server settings:
# KBENCH_CONF holds more postgresql.conf lines (e.g. 'wal_init_zero = off'),
# BENCH_INITDB_ARGS more initdb options (e.g. '--wal-segsize=64').
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick --profile --produce-only -- "$@"
bench_server_prepare kbench
if [[ " ${opts[*]-} " == *" --profile "* ]] && ! command -v perf >/dev/null; then
	echo "run.sh: --profile needs perf (apt-get install linux-perf)" >&2; exit 1
fi

bench_build_client slbench "$here/slbench.c"

bench_server_start "${KBENCH_CONF:-}"

mkdir -p "$bench/results"
PGBIN=$pgbin "$python" "$here/kbench.py" ${opts[@]+"${opts[@]}"} \
	--brokers "127.0.0.1:$kport" --slbench "$tmp/slbench" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/kafka-latest.txt"
