# The private, throw-away PostgreSQL 15 server every benchmark runs on, and
# what else the three runners (bench/run.sh, bench/kafka/run.sh,
# bench/groups/run.sh), which source this, do alike:
#
#   bench_options OPTION... -- "$@"
#                               the runner's command line: each OPTION it
#                               accepts (--quick, --profile) given is
#                               collected in $opts; -h prints the runner's
#                               header comment
#   bench_build_client NAME SOURCE [CC ARGS...]
#                               checks for a C compiler and librdkafka and
#                               builds the librdkafka client SOURCE as
#                               $tmp/NAME (after bench_server_prepare)
#   bench_server_prepare NAME   checks the tools and the installed extension,
#                               makes the work directory $tmp (removed on exit,
#                               with the server stopped, whatever happens),
#                               sets pgbin python as_pg pguser tmp data log
#                               and the free loopback ports $port (SQL) and
#                               $kport (Kafka; never 9092, which other
#                               brokers on the machine may use)
#   bench_server_start [CONF]   initdb, the common settings plus CONF (more
#                               postgresql.conf lines), start; exports PG*
#                               for the benchmark's clients

bench_server_prepare() {
	local name=$1 tool
	repo=${repo:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
	pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
	python=/usr/bin/python3
	for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/postgres" "$python"; do
		[ -x "$tool" ] || { echo "run.sh: $tool not found" >&2; exit 1; }
	done
	"$python" -c 'import psycopg' 2>/dev/null || {
		echo "run.sh: python3-psycopg is not installed (apt-get install python3-psycopg)" >&2; exit 1; }

	local pkglibdir
	pkglibdir=$("$pgbin/pg_config" --pkglibdir)
	[ -f "$pkglibdir/streamlog.so" ] || {
		echo "run.sh: streamlog is not installed; run 'make && make install' in $repo" >&2; exit 1; }
	if [ -f "$repo/streamlog.so" ] && ! cmp -s "$repo/streamlog.so" "$pkglibdir/streamlog.so"; then
		echo "run.sh: warning: $pkglibdir/streamlog.so differs from the build in $repo (make install?)" >&2
	fi

	# Server processes may not run as root: run them as the postgres user
	# when started by root.
	if [ "$(id -u)" -eq 0 ]; then
		as_pg=(runuser -u postgres --)
		pguser=postgres
	else
		as_pg=()
		pguser=$(id -un)
	fi

	# On the same file system as a normal data directory (not a tmpfs), so
	# that fsync costs what it costs in production.
	tmp=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/streamlog-$name.XXXXXX")
	chmod 755 "$tmp"
	if [ "$(id -u)" -eq 0 ]; then chown postgres: "$tmp"; fi
	data=$tmp/data
	log=$tmp/server.log
	trap bench_server_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	read -r port kport < <("$python" - <<'PYEOF'
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
PYEOF
)
}

bench_server_cleanup() {
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

bench_server_start() {
	# shellcheck disable=SC2086  # BENCH_INITDB_ARGS: several words
	"${as_pg[@]}" "$pgbin/initdb" -D "$data" -U "$pguser" --auth=trust \
		--encoding=UTF8 --locale=C ${BENCH_INITDB_ARGS:-} >"$tmp/initdb.log" 2>&1 || {
		cat "$tmp/initdb.log" >&2; exit 1; }

	cat >>"$data/postgresql.conf" <<EOF

# streamlog benchmark
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
streamlog.listen_addresses = '127.0.0.1'
streamlog.port = $kport
${1:-}
EOF

	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
	export PGHOST=127.0.0.1 PGPORT=$port PGUSER=$pguser PGDATABASE=postgres
}

bench_options() {
	local accepted=() arg ok a
	while [ "$1" != -- ]; do accepted+=("$1"); shift; done
	shift
	opts=()
	for arg in "$@"; do
		case "$arg" in
			# the header comment, from below the #! line to the code
			-h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		esac
		ok=
		for a in "${accepted[@]}"; do [ "$arg" = "$a" ] && ok=1; done
		if [ -z "$ok" ]; then
			echo "usage: $0$(printf ' [%s]' "${accepted[@]}")" >&2; exit 2
		fi
		opts+=("$arg")
	done
}

bench_build_client() {
	local name=$1 src=$2
	shift 2
	if ! command -v cc >/dev/null || ! pkg-config --exists rdkafka; then
		echo "run.sh: a C compiler and librdkafka are needed (apt-get install gcc pkg-config librdkafka-dev)" >&2
		exit 1
	fi
	# shellcheck disable=SC2046  # pkg-config prints several words
	cc -O2 -Wall -o "$tmp/$name" "$src" $(pkg-config --cflags --libs rdkafka) "$@" || {
		echo "run.sh: could not build $name" >&2; exit 1; }
}
