#!/usr/bin/env bash
# Benchmark what the shared-memory counters (issue 15) cost: the CPU time
# per record of the broker workers (Kafka produce and fetch of fixed
# requests) and of a backend (SQL produce and read), with
# streamlog.track_metrics on, off and on again, many short runs interleaved
# in one invocation on one private, throw-away PostgreSQL 15 server.
#
#   bench/metrics/run.sh [--quick] [--rounds N] [--profile-rounds N] [--librdkafka]
#
# --quick runs reduced sizes and 3 rounds; --rounds N sets the rounds
# (default 12); --profile-rounds N the rounds with the counters on under
# perf record after them, for the counting code's share of the samples
# (default 3; 0: none; needs perf); --librdkafka adds librdkafka produce
# and consume (slbench).
# The results table is printed and written to
# bench/results/metrics-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
args=()
while [ $# -gt 0 ]; do
	case "$1" in
		-h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		--quick|--librdkafka) args+=("$1") ;;
		--rounds|--profile-rounds) [ $# -ge 2 ] || { echo "run.sh: $1 needs a number" >&2; exit 2; }
			args+=("$1" "$2"); shift ;;
		*) echo "usage: $0 [--quick] [--rounds N] [--profile-rounds N] [--librdkafka]" >&2; exit 2 ;;
	esac
	shift
done
bench_server_prepare mbench
bench_build_client slbench "$bench/kafka/slbench.c"

bench_server_start

mkdir -p "$bench/results"
PGBIN=$pgbin "$python" "$here/mbench.py" ${args[@]+"${args[@]}"} \
	--brokers "127.0.0.1:$kport" --slbench "$tmp/slbench" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/metrics-latest.txt"
