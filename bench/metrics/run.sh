#!/usr/bin/env bash
# Benchmark what the shared-memory counters (issue 15) cost: Kafka produce
# and consume throughput (librdkafka clients) and SQL produce and read,
# with streamlog.track_metrics on and off, alternating, in one run on one
# private, throw-away PostgreSQL 15 server.
#
#   bench/metrics/run.sh [--quick] [--same-both]
#
# --quick runs reduced sizes; --same-both keeps the counters on in both
# columns (an A/A run, showing the noise of the method).  The results
# table is printed and written to bench/results/metrics-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick --same-both -- "$@"
bench_server_prepare mbench
bench_build_client slbench "$bench/kafka/slbench.c"

bench_server_start

mkdir -p "$bench/results"
PGBIN=$pgbin "$python" "$here/mbench.py" ${opts[@]+"${opts[@]}"} \
	--brokers "127.0.0.1:$kport" --slbench "$tmp/slbench" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/metrics-latest.txt"
