#!/usr/bin/env bash
# Benchmark streamlog's log compaction on a private, throw-away PostgreSQL
# 15 server: the background cleaner's throughput (MB/s of dirty log cleaned
# and records/s) over 10M records with 1M distinct keys, next to the same
# records deduplicated by plain SQL (CREATE TABLE AS SELECT DISTINCT ON
# over a plain table holding them), and the produce rate of a concurrent
# producer with the cleaner idle and while it cleans.
#
#   bench/compaction/run.sh [--quick]
#
# --quick runs 10x less (1M records, 100k keys).  The server is initialised
# in a temporary directory, listens on free loopback ports, checks for work
# every 100 ms (streamlog.retention_check_interval) and is stopped and
# removed on exit, whatever happens.  CBENCH_RECORDS=N sets the number of
# records (a tenth as many keys), for a smoke test.  The results table is printed and
# written to bench/results/compaction-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick -- "$@"
bench_server_prepare cbench
bench_server_start "streamlog.retention_check_interval = 100"

sizes=()
if [ -n "${CBENCH_RECORDS:-}" ]; then sizes=(--records "$CBENCH_RECORDS"); fi

mkdir -p "$bench/results"
"$python" "$here/cbench.py" ${opts[@]+"${opts[@]}"} ${sizes[@]+"${sizes[@]}"} \
	--data-dir "$data" --server-log "$log" --output "$bench/results/compaction-latest.txt"
