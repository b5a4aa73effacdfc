#!/usr/bin/env bash
# Builds and installs streamlog, then runs PostgreSQL 15 with it in the
# foreground.  Ctrl-C stops the server (fast shutdown).
#
#   scripts/run.sh [--port N] [--kafka-port N]
#
#   --port N        PostgreSQL port on 127.0.0.1 (default: $STREAMLOG_PG_PORT or 15432)
#   --kafka-port N  Kafka listener port on 127.0.0.1 (default: $STREAMLOG_KAFKA_PORT or 9092)
#   -h, --help      show this help
#
# The cluster lives in ./data and is kept between runs.  The extension is
# created in database "postgres" once the server accepts connections.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
PORT=${STREAMLOG_PG_PORT:-15432}
KAFKA_PORT=${STREAMLOG_KAFKA_PORT:-9092}

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --port)
            [ $# -ge 2 ] || { echo "run.sh: --port needs a value" >&2; exit 2; }
            PORT=$2; shift 2 ;;
        --port=*) PORT=${1#--port=}; shift ;;
        --kafka-port)
            [ $# -ge 2 ] || { echo "run.sh: --kafka-port needs a value" >&2; exit 2; }
            KAFKA_PORT=$2; shift 2 ;;
        --kafka-port=*) KAFKA_PORT=${1#--kafka-port=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for p in "$PORT" "$KAFKA_PORT"; do
    if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
        echo "run.sh: invalid port: $p" >&2
        exit 2
    fi
done

say() { printf 'run.sh: %s\n' "$*"; }

cd "$ROOT"

"$ROOT/scripts/deps.sh" --build-only

say "building"
make -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
say "installing"
if [ "$(id -u)" -eq 0 ]; then
    make install PG_CONFIG="$PG_CONFIG"
else
    sudo make install PG_CONFIG="$PG_CONFIG"
fi

BINDIR=$("$PG_CONFIG" --bindir)

# initdb and postgres refuse to run as root: use the postgres system user.
DATA="$ROOT/data"
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
    if ! runuser -u postgres -- test -x "$ROOT"; then
        DATA=/var/tmp/streamlog-data
        say "user postgres cannot reach $ROOT; using $DATA for the cluster instead"
    fi
    mkdir -p "$DATA"
    if [ "$(stat -c %U "$DATA")" != postgres ]; then
        chown -R postgres:postgres "$DATA"
    fi
else
    as_pg=()
    mkdir -p "$DATA"
fi
chmod 700 "$DATA"

if [ ! -s "$DATA/PG_VERSION" ]; then
    say "creating cluster in $DATA"
    (cd "$DATA" && "${as_pg[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres \
        -A trust -E UTF8 --locale=C --no-instructions)
    echo "include_if_exists = 'streamlog_run.conf'" >>"$DATA/postgresql.conf"
fi

# Rewritten on every run so the port and settings always match this script.
cat >"$DATA/streamlog_run.conf" <<EOF
# written by scripts/run.sh on every start
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
shared_preload_libraries = 'streamlog'
streamlog.database = 'postgres'
streamlog.listen_addresses = '127.0.0.1'
streamlog.port = $KAFKA_PORT
EOF
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$DATA/streamlog_run.conf"
fi

PSQL=(psql -h 127.0.0.1 -p "$PORT" -U postgres postgres)

cat <<EOF

  streamlog on PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //')
  data directory   $DATA
  listening on     127.0.0.1:$PORT (no Unix socket)
  connect with     ${PSQL[*]}
  connection URI   postgresql://postgres@127.0.0.1:$PORT/postgres
  Kafka clients    bootstrap.servers=127.0.0.1:$KAFKA_PORT
                   (e.g. kcat -b 127.0.0.1:$KAFKA_PORT -L)
  settings         shared_preload_libraries = 'streamlog'
                   streamlog.database = 'postgres'
                   streamlog.port = $KAFKA_PORT
                   (edit $DATA/postgresql.conf for more;
                    $DATA/streamlog_run.conf is rewritten on each run)
  stop with        Ctrl-C

EOF

# Creates the extension once the server is up.  Double-forked so that it is
# not a child of the postmaster (which reaps and judges its own children).
create_extension() {
    local server_pid=$1 i
    for ((i = 0; i < 600; i++)); do
        kill -0 "$server_pid" 2>/dev/null || return 0
        # postmaster.pid: line 1 is the postmaster's PID, line 8 its status
        if [ "$(sed -n 1p "$DATA/postmaster.pid" 2>/dev/null)" = "$server_pid" ] &&
            [ "$(sed -n '8s/ *$//p' "$DATA/postmaster.pid" 2>/dev/null)" = ready ]; then
            if "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
                -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS streamlog' \
                >/dev/null; then
                say "extension streamlog is ready in database postgres; connect with: ${PSQL[*]}"
            else
                say "CREATE EXTENSION streamlog failed (see the server log above)"
            fi
            return 0
        fi
        sleep 0.2
    done
    say "server did not accept connections within 120 s; extension not created"
}
( (create_extension $$ || true) & )

# Replace this shell by the postmaster: Ctrl-C (SIGINT) is a fast shutdown,
# SIGTERM a smart one.  setpriv execs directly (runuser would stay as a parent
# process that SIGKILLs its child 2 s after a SIGTERM).
if [ "$(id -u)" -eq 0 ]; then
    cd "$DATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        "$BINDIR/postgres" -D "$DATA"
else
    exec "$BINDIR/postgres" -D "$DATA"
fi
