#!/usr/bin/env bash
# Runs a streamlog cluster of several local nodes, each a PostgreSQL 15 with
# the installed streamlog (make install first), its own data directory and
# its own SQL, Kafka and Raft ports on 127.0.0.1.
#
#   scripts/cluster.sh start [N]   create (first time) and start N nodes (default 3)
#   scripts/cluster.sh status      nodes, controller and Raft state
#   scripts/cluster.sh stop [N]    stop every node, or node N (pg_ctl -m fast:
#                                  a controlled shutdown)
#   scripts/cluster.sh kill N      kill -9 node N's postmaster
#   scripts/cluster.sh restart N   stop node N if it runs, then start it
#   scripts/cluster.sh destroy     stop every node and remove the cluster's files
#
# Options for start (first time only; kept in cluster.env afterwards):
#   --voters K   the first K nodes are Raft voters (default min(N, 3)); the
#                others join as non-voting members
#
# Environment:
#   STREAMLOG_CLUSTER_DIR   where the nodes live (default ./cluster-data:
#                           nodeN/ per node, cluster.env with the settings)
#   PG_CONFIG               the PostgreSQL whose streamlog is used
#                           (default /usr/bin/pg_config)
#   STREAMLOG_CLUSTER_PG_PORT, STREAMLOG_CLUSTER_KAFKA_PORT,
#   STREAMLOG_CLUSTER_RAFT_PORT   node 1's ports (default 15432, 9092,
#                           19092); node N uses base + N - 1
#
# Run as root, the servers run as the postgres system user.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
DIR=${STREAMLOG_CLUSTER_DIR:-$PWD/cluster-data}
BINDIR=$("$PG_CONFIG" --bindir)
HOST=127.0.0.1

say() { printf 'cluster.sh: %s\n' "$*"; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,28s/^# \{0,1\}//p' "$0"; }

if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
else
    as_pg=()
fi

# -- the cluster's settings (cluster.env) -------------------------------------

ENV_FILE=$DIR/cluster.env

load_env() {
    [ -f "$ENV_FILE" ] || die "no cluster in $DIR (start one with: $0 start 3)"
    # shellcheck disable=SC1090
    . "$ENV_FILE"
}

node_dir() { echo "$DIR/node$1"; }
pg_port() { echo $((PG_PORT_BASE + $1 - 1)); }
kafka_port() { echo $((KAFKA_PORT_BASE + $1 - 1)); }
raft_port() { echo $((RAFT_PORT_BASE + $1 - 1)); }
psql_cmd() { echo "psql -h $HOST -p $(pg_port "$1") -U postgres postgres"; }

valid_node() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$NODES" ] ||
        die "no node $1 (nodes 1..$NODES)"
}

voters_list() {
    local i list=""
    for ((i = 1; i <= VOTERS; i++)); do
        list+="${list:+,}$i@$HOST:$(raft_port "$i")"
    done
    echo "$list"
}

new_cluster_id() {
    # like kafka-storage random-uuid: a UUID in URL-safe base64, 22 characters
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# -- one node -------------------------------------------------------------------

alive() {
    # true if process $1 exists and is not a zombie (a killed postmaster
    # nobody reaped still answers kill -0)
    local state
    state=$(sed -n 's/.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

postmaster_pid() {
    sed -n 1p "$(node_dir "$1")/postmaster.pid" 2>/dev/null || true
}

running_pid() {
    # the postmaster's pid if it runs, else nothing
    local pid
    pid=$(postmaster_pid "$1")
    if [ -n "$pid" ] && alive "$pid"; then
        echo "$pid"
    fi
    return 0
}

node_processes() {
    # every process whose working directory is the node's data directory:
    # the postmaster and its children, orphans of a killed postmaster too
    local target p
    target=$(readlink -f "$(node_dir "$1")")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" = "$target" ] && echo "${p#/proc/}"
    done
    return 0
}

init_node() {
    local i=$1 d
    d=$(node_dir "$i")
    [ -s "$d/PG_VERSION" ] && return 0
    mkdir -p "$d"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$d"
    chmod 700 "$d"
    say "node $i: initdb in $d"
    (cd "$d" && "${as_pg[@]}" "$BINDIR/initdb" -D "$d" -U postgres -A trust -E UTF8 \
        --locale=C --no-instructions >"$d/../node$i-initdb.log" 2>&1) ||
        die "initdb of node $i failed, see $DIR/node$i-initdb.log"
    echo "include_if_exists = 'streamlog_cluster.conf'" >>"$d/postgresql.conf"
}

write_node_conf() {
    # rewritten on every start so that it always matches cluster.env
    local i=$1 d
    d=$(node_dir "$i")
    cat >"$d/streamlog_cluster.conf" <<EOF
# written by scripts/cluster.sh on every start of this node
listen_addresses = '$HOST'
port = $(pg_port "$i")
unix_socket_directories = ''
shared_preload_libraries = 'streamlog'
# partition data flows to followers by logical decoding: a walsender and a
# slot per (leader, follower) pair, an apply worker per leader
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 24
# consume() on a node that does not coordinate the group prepares its claim
# on the coordinator (two-phase commit with the caller's transaction)
max_prepared_transactions = 64
streamlog.database = 'postgres'
streamlog.listen_addresses = '$HOST'
streamlog.port = $(kafka_port "$i")
streamlog.node_id = $i
streamlog.controller_quorum_voters = '$(voters_list)'
streamlog.raft_listen_address = '$HOST:$(raft_port "$i")'
streamlog.cluster_id = '$CLUSTER_ID'
streamlog.advertised_sql_conninfo = 'host=$HOST port=$(pg_port "$i") user=postgres dbname=postgres'
EOF
    # a PostgreSQL that lists the output plugins replication may use must
    # list streamlog's
    if "$BINDIR/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
        echo "output_plugin_libraries = 'pgoutput, test_decoding, streamlog'" >>"$d/streamlog_cluster.conf"
    fi
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$d/streamlog_cluster.conf"
    return 0
}

start_node() {
    local i=$1 d
    d=$(node_dir "$i")
    if [ -n "$(running_pid "$i")" ]; then
        say "node $i already runs"
        return 0
    fi
    wait_gone "$i"
    # a pid file left by a killed postmaster (see kill_node)
    rm -f "$d/postmaster.pid"
    init_node "$i"
    write_node_conf "$i"
    (cd "$d" && "${as_pg[@]}" "$BINDIR/pg_ctl" -D "$d" -l "$DIR/node$i.log" -w -t 120 \
        start >/dev/null) ||
        die "node $i did not start; its log: $DIR/node$i.log"
}

create_extension() {
    PGOPTIONS='-c client_min_messages=warning' "$BINDIR/psql" -X -q -h $HOST -p "$(pg_port "$1")" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS streamlog' >/dev/null ||
        die "CREATE EXTENSION streamlog failed on node $1; its log: $DIR/node$1.log"
}

wait_gone() {
    # after a kill -9 the postmaster's children exit once they notice; a new
    # postmaster must not start beside them
    local i=$1 n
    for ((n = 0; n < 600; n++)); do
        [ -z "$(node_processes "$i")" ] && return 0
        sleep 0.1
    done
    die "processes of node $i still run after 60 s: $(node_processes "$i" | tr '\n' ' ')"
}

stop_node() {
    local i=$1 d
    d=$(node_dir "$i")
    if [ -z "$(running_pid "$i")" ]; then
        say "node $i is not running"
        return 0
    fi
    say "node $i: stopping (fast: a controlled shutdown)"
    (cd "$d" && "${as_pg[@]}" "$BINDIR/pg_ctl" -D "$d" -m fast -w -t 120 stop >/dev/null)
}

kill_node() {
    local i=$1 pid
    pid=$(running_pid "$i")
    [ -n "$pid" ] || die "node $i is not running"
    say "node $i: kill -9 $pid"
    kill -9 "$pid"
    wait_gone "$i"
    # its pid file names a dead process (a zombie where nobody reaps it,
    # which the next postmaster would take for a running server)
    [ "$(postmaster_pid "$i")" = "$pid" ] && rm -f "$(node_dir "$i")/postmaster.pid"
    return 0
}

# -- what the user sees ---------------------------------------------------------

sql_on() {
    # run a query on node $1, unaligned; fails quietly
    "$BINDIR/psql" -X -q -h $HOST -p "$(pg_port "$1")" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 "${@:2}" 2>/dev/null
}

first_running() {
    local i
    for ((i = 1; i <= NODES; i++)); do
        if [ -n "$(running_pid "$i")" ]; then
            echo "$i"
            return 0
        fi
    done
}

wait_controller() {
    # the controller as streamlog.nodes shows it, once there is one
    local i n c
    for ((n = 0; n < 300; n++)); do
        i=$(first_running)
        [ -n "$i" ] || return 0
        # a streamlog without cluster views: nothing to wait for
        [ "$(sql_on "$i" -At -c "SELECT to_regclass('streamlog.nodes') IS NOT NULL")" = t ] ||
            return 0
        c=$(sql_on "$i" -At -c \
            "SELECT node_id FROM streamlog.nodes WHERE is_controller" || true)
        if [ -n "$c" ]; then
            echo "$c"
            return 0
        fi
        sleep 0.2
    done
}

print_endpoints() {
    local i bootstrap=""
    for ((i = 1; i <= NODES; i++)); do
        bootstrap+="${bootstrap:+,}$HOST:$(kafka_port "$i")"
    done
    echo
    echo "  streamlog cluster $CLUSTER_ID: $NODES nodes, voters: $(voters_list)"
    echo "  files            $DIR"
    echo "  bootstrap.servers=$bootstrap"
    echo "                   (e.g. kcat -b $bootstrap -L)"
    for ((i = 1; i <= NODES; i++)); do
        local state=stopped
        [ -n "$(running_pid "$i")" ] && state=running
        printf '  node %-3s %-8s %s   kafka %s:%s   raft %s:%s   log %s\n' "$i" "$state" \
            "$(psql_cmd "$i")" $HOST "$(kafka_port "$i")" $HOST "$(raft_port "$i")" \
            "$DIR/node$i.log"
    done
    echo
}

cmd_start() {
    local n=${1:-} voters=""
    shift || true
    while [ $# -gt 0 ]; do
        case "$1" in
            --voters) [ $# -ge 2 ] || die "--voters needs a value"; voters=$2; shift 2 ;;
            --voters=*) voters=${1#--voters=}; shift ;;
            *) die "unknown argument: $1" ;;
        esac
    done
    if [ "$n" = "--voters" ] || [[ "$n" == --voters=* ]]; then
        die "give the number of nodes first: $0 start 3 --voters 3"
    fi
    if [ -f "$ENV_FILE" ]; then
        load_env
        if [ -n "$n" ] && [ "$n" != "$NODES" ]; then
            die "the cluster in $DIR has $NODES nodes; '$0 destroy' first to start $n"
        fi
    else
        n=${n:-3}
        [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 64 ] ||
            die "number of nodes must be 1..64, not $n"
        voters=${voters:-$((n < 3 ? n : 3))}
        [[ "$voters" =~ ^[0-9]+$ ]] && [ "$voters" -ge 1 ] && [ "$voters" -le "$n" ] ||
            die "voters must be 1..$n, not $voters"
        mkdir -p "$DIR"
        if [ "$(id -u)" -eq 0 ]; then
            # the servers (user postgres) write their logs here
            chown postgres:postgres "$DIR"
            runuser -u postgres -- test -x "$DIR" ||
                die "user postgres cannot reach $DIR; set STREAMLOG_CLUSTER_DIR to a directory it can"
        fi
        cat >"$ENV_FILE" <<EOF
# written by scripts/cluster.sh when the cluster was created
NODES=$n
VOTERS=$voters
CLUSTER_ID=$(new_cluster_id)
PG_PORT_BASE=${STREAMLOG_CLUSTER_PG_PORT:-15432}
KAFKA_PORT_BASE=${STREAMLOG_CLUSTER_KAFKA_PORT:-9092}
RAFT_PORT_BASE=${STREAMLOG_CLUSTER_RAFT_PORT:-19092}
EOF
        load_env
    fi
    [ -f "$("$PG_CONFIG" --pkglibdir)/streamlog.so" ] ||
        die "streamlog is not installed for $PG_CONFIG (make install PG_CONFIG=$PG_CONFIG)"
    local i pids=() rc=0
    # in parallel: a quorum needs a majority of the voters up
    for ((i = 1; i <= NODES; i++)); do
        start_node "$i" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [ $rc -eq 0 ] || die "some nodes did not start (see above)"
    for ((i = 1; i <= NODES; i++)); do create_extension "$i"; done
    local c
    c=$(wait_controller)
    print_endpoints
    if [ -n "$c" ]; then
        echo "  controller       node $c"
    else
        echo "  controller       none yet (scripts/cluster.sh status)"
    fi
    echo
}

cmd_status() {
    load_env
    print_endpoints
    local i
    i=$(first_running)
    if [ -z "$i" ]; then
        echo "  no node runs"
        return 0
    fi
    echo "streamlog.nodes (as node $i sees it):"
    sql_on "$i" -c "SELECT * FROM streamlog.nodes ORDER BY 1" ||
        echo "  (streamlog.nodes not available on node $i)"
    echo "streamlog.raft_status of every running node:"
    for ((i = 1; i <= NODES; i++)); do
        [ -n "$(running_pid "$i")" ] || continue
        echo "node $i:"
        sql_on "$i" -x -c "SELECT * FROM streamlog.raft_status" ||
            echo "  (streamlog.raft_status not available on node $i)"
    done
}

cmd_stop() {
    load_env
    if [ -n "${1:-}" ]; then
        valid_node "$1"
        stop_node "$1"
        return 0
    fi
    local i
    # the voters last: the others' controlled shutdowns need a controller
    for ((i = NODES; i >= 1; i--)); do stop_node "$i"; done
}

cmd_kill() {
    load_env
    [ -n "${1:-}" ] || die "kill needs a node number"
    valid_node "$1"
    kill_node "$1"
}

cmd_restart() {
    load_env
    [ -n "${1:-}" ] || die "restart needs a node number"
    valid_node "$1"
    stop_node "$1"
    start_node "$1"
    say "node $1 runs: $(psql_cmd "$1"), kafka $HOST:$(kafka_port "$1")"
}

cmd_destroy() {
    if [ ! -f "$ENV_FILE" ]; then
        say "no cluster in $DIR"
        return 0
    fi
    load_env
    local i
    for ((i = NODES; i >= 1; i--)); do
        if [ -n "$(running_pid "$i")" ]; then
            (cd "$(node_dir "$i")" && "${as_pg[@]}" "$BINDIR/pg_ctl" -D "$(node_dir "$i")" \
                -m immediate -w stop >/dev/null) || true
        fi
        wait_gone "$i"
    done
    rm -rf "$DIR"
    say "removed $DIR"
}

[ $# -ge 1 ] || { usage; exit 2; }
command=$1
shift
case "$command" in
    start) cmd_start "$@" ;;
    status) cmd_status ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    destroy) cmd_destroy ;;
    -h|--help|help) usage ;;
    *) say "unknown command: $command"; usage >&2; exit 2 ;;
esac
