#!/usr/bin/env bash
# Benchmark Kafka transactions (issue 14) with librdkafka (confluent-kafka)
# on a private, throw-away PostgreSQL 15 server: transactional produce
# (transactions of 100 and 1,000 records of 100 B) next to idempotent
# non-transactional produce in the same run, commit latency p50/p99, and
# read_committed consume next to read_uncommitted.
#
#   bench/transactions/run.sh [--quick]
#
# The results table is printed and written to
# bench/results/transactions-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick -- "$@"
bench_server_prepare txbench
"$python" -c 'import confluent_kafka' 2>/dev/null || {
	echo "run.sh: python3-confluent-kafka is not installed" >&2; exit 1; }
bench_server_start "streamlog.transaction_coordinator = on"

mkdir -p "$bench/results"
"$python" "$here/txbench.py" ${opts[@]+"${opts[@]}"} --brokers "127.0.0.1:$kport" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/transactions-latest.txt"
