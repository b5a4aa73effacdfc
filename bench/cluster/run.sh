#!/usr/bin/env bash
# Benchmark a three-node streamlog cluster on loopback, next to a standalone
# streamlog started in the same run: controller failover (kill -9 of the
# controller, 20 repetitions: p50/p99), metadata propagation (a topic made
# on one node, visible in every node's Metadata: p99), and creating 1,000
# topics x 6 partitions through one node.
#
#   bench/cluster/run.sh [--quick] [--only failover|propagation|topics]
#                        [--set NAME=VALUE]...
#
# --quick runs reduced sizes (5 failovers, 20 topics propagated, 100 topics
# created); --set gives every server a setting (e.g.
# streamlog.raft_heartbeat_interval_ms=20).  The servers are made by the
# multi-node test harness (test/python/cluster.py) with the installed
# streamlog of $PG_CONFIG (default /usr/bin/pg_config), in a directory under
# /var/tmp (BENCH_TMPDIR), on free loopback ports, and are stopped and
# removed on exit, whatever happens.  The results table is printed and
# written to bench/results/cluster-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")
python=/usr/bin/python3
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}

opts=()
while [ $# -gt 0 ]; do
	case "$1" in
		--quick) opts+=(--quick); shift ;;
		--only) [ $# -ge 2 ] || { echo "run.sh: --only needs a value" >&2; exit 2; }
			opts+=(--only "$2"); shift 2 ;;
		--only=*) opts+=(--only "${1#--only=}"); shift ;;
		--set) [ $# -ge 2 ] || { echo "run.sh: --set needs NAME=VALUE" >&2; exit 2; }
			opts+=(--set "$2"); shift 2 ;;
		--set=*) opts+=(--set "${1#--set=}"); shift ;;
		-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
		*) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done

pkglibdir=$("$PG_CONFIG" --pkglibdir)
[ -f "$pkglibdir/streamlog.so" ] || {
	echo "run.sh: streamlog is not installed for $PG_CONFIG; run 'make && make install' in $repo" >&2
	exit 1; }
if [ -f "$repo/streamlog.so" ] && ! cmp -s "$repo/streamlog.so" "$pkglibdir/streamlog.so"; then
	echo "run.sh: warning: $pkglibdir/streamlog.so differs from the build in $repo (make install?)" >&2
fi
"$python" -c 'import psycopg' 2>/dev/null || {
	echo "run.sh: python3-psycopg is not installed (apt-get install python3-psycopg)" >&2; exit 1; }

# On a real disk, as the other benchmarks; the harness makes each server's
# directory inside it (owned by postgres when run by root)
tmp=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/streamlog-cluster.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$bench/results"
"$python" "$here/cbench.py" ${opts[@]+"${opts[@]}"} --work-dir "$tmp" \
	--output "$bench/results/cluster-latest.txt"
