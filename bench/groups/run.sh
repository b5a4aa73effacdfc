#!/usr/bin/env bash
# Benchmark streamlog's consumer groups (SQL streamlog.consume next to PgQ
# and a SKIP LOCKED queue table; librdkafka consumer groups: drain rate and
# rebalance times) on a private, throw-away PostgreSQL 15 server.
#
#   bench/groups/run.sh [--quick]
#
# --quick runs reduced sizes.  The server is initialised in a temporary
# directory, listens (SQL and Kafka) on free loopback ports, runs with
# streamlog.group_initial_rebalance_delay = 0, and is stopped and removed on
# exit, whatever happens.  The results table is printed and written to
# bench/results/groups-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

opts=()
for arg in "$@"; do
	case "$arg" in
		--quick) opts+=(--quick) ;;
		-h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
	esac
done

pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
python=/usr/bin/python3
for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/postgres" "$python"; do
	[ -x "$tool" ] || { echo "run.sh: $tool not found" >&2; exit 1; }
done
"$python" -c 'import psycopg' 2>/dev/null || {
	echo "run.sh: python3-psycopg is not installed (apt-get install python3-psycopg)" >&2; exit 1; }
command -v cc >/dev/null && pkg-config --exists rdkafka || {
	echo "run.sh: a C compiler and librdkafka are needed (apt-get install gcc pkg-config librdkafka-dev)" >&2
	exit 1; }

pkglibdir=$("$pgbin/pg_config" --pkglibdir)
sharedir=$("$pgbin/pg_config" --sharedir)
[ -f "$pkglibdir/streamlog.so" ] || {
	echo "run.sh: streamlog is not installed; run 'make && make install' in $repo" >&2; exit 1; }
[ -f "$sharedir/extension/pgq.control" ] || {
	echo "run.sh: PgQ is not installed (apt-get install postgresql-15-pgq3)" >&2; exit 1; }
if [ -f "$repo/streamlog.so" ] && ! cmp -s "$repo/streamlog.so" "$pkglibdir/streamlog.so"; then
	echo "run.sh: warning: $pkglibdir/streamlog.so differs from the build in $repo (make install?)" >&2
fi

# Server processes may not run as root: run them as the postgres user when
# started by root.
if [ "$(id -u)" -eq 0 ]; then
	as_pg=(runuser -u postgres --)
	pguser=postgres
else
	as_pg=()
	pguser=$(id -un)
fi

# On the same file system as a normal data directory (not a tmpfs), so that
# fsync costs what it costs in production.
tmp=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/streamlog-gbench.XXXXXX")
chmod 755 "$tmp"
[ "$(id -u)" -eq 0 ] && chown postgres: "$tmp"
data=$tmp/data
log=$tmp/server.log

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -f "$data/postmaster.pid" ]; then
		"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 ||
			"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -f "$log" ]; then
		echo "run.sh: failed (exit $rc); last lines of the server log:" >&2
		tail -n 30 "$log" >&2 || true
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -Wall -o "$tmp/slgroup" "$here/slgroup.c" $(pkg-config --cflags --libs rdkafka) -lpthread || {
	echo "run.sh: could not build slgroup" >&2; exit 1; }

# Two free loopback ports, SQL and Kafka (never 9092: other brokers use it)
read -r port kport < <("$python" - <<'EOF'
import socket
socks, ports = [], []
while len(ports) < 2:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    socks.append(s)
    if p != 9092:
        ports.append(p)
print(*ports)
EOF
)

"${as_pg[@]}" "$pgbin/initdb" -D "$data" -U "$pguser" --auth=trust \
	--encoding=UTF8 --locale=C >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2; exit 1; }

cat >>"$data/postgresql.conf" <<EOF

# streamlog consumer-group benchmark
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp'
max_connections = 100
shared_preload_libraries = 'streamlog'
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
synchronous_commit = on
fsync = on
full_page_writes = on
autovacuum = on
streamlog.database = 'postgres'
streamlog.port = $kport
streamlog.listen_addresses = '127.0.0.1'
# the first rebalance of a new group does not wait for more members, so that
# the rebalance times measure the protocol, not this delay (default 3 s)
streamlog.group_initial_rebalance_delay = 0
EOF

"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null

mkdir -p "$bench/results"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=$pguser PGDATABASE=postgres
PGBIN=$pgbin "$python" "$here/gbench.py" ${opts[@]+"${opts[@]}"} \
	--brokers "127.0.0.1:$kport" --slgroup "$tmp/slgroup" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/groups-latest.txt"
