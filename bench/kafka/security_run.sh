#!/usr/bin/env bash
# Benchmark the Kafka listeners' security protocols side by side: produce
# and consume throughput (librdkafka, slbench) and connection set-up over
# PLAINTEXT and SSL listeners of one throw-away PostgreSQL 15 server, in
# the same run.
#
#   bench/kafka/security_run.sh [--quick] [--profile] [--no-sasl]
#
# --quick runs reduced sizes; --profile also samples the broker workers with
# perf during the first round of each run and prints their top symbols.  A
# SASL_SSL listener (SCRAM-SHA-256 as a role made by the benchmark) is
# measured too, unless --no-sasl.  The
# certificates (a CA and a server certificate for 127.0.0.1) are made with
# openssl in the work directory.  The results table is printed and written
# to bench/results/kafka-security-latest.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(dirname "$here")
repo=$(dirname "$bench")

# shellcheck source=bench/server.sh
. "$bench/server.sh"
bench_options --quick --profile --no-sasl -- "$@"
bench_server_prepare ksecurity
command -v openssl >/dev/null || { echo "security_run.sh: openssl is needed (apt-get install openssl)" >&2; exit 1; }
"$python" -c 'import kafka' 2>/dev/null || {
	echo "security_run.sh: python3-kafka is needed (apt-get install python3-kafka)" >&2; exit 1; }
sasl=1
driver_opts=()
for o in ${opts[@]+"${opts[@]}"}; do
	case "$o" in
		--no-sasl) sasl= ;;
		*) driver_opts+=("$o") ;;
	esac
done

bench_build_client slbench "$here/slbench.c"

# Two more loopback ports: the SSL and SASL_SSL listeners
read -r sport saslport < <("$python" - "$port" "$kport" <<'PYEOF'
import socket, sys
taken = {int(p) for p in sys.argv[1:]} | {9092, 9093}
socks, ports = [], []
while len(ports) < 2:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    if s.getsockname()[1] not in taken:
        ports.append(s.getsockname()[1])
print(*ports)
PYEOF
)

pki=$tmp/pki
mkdir -p "$pki"
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 -subj "/CN=streamlog bench CA" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' \
	>"$pki/server.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
	-out "$pki/server.crt" -days 2 -extfile "$pki/server.ext" 2>/dev/null
chmod 600 "$pki/server.key"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$pki"; fi

listeners="PLAINTEXT://127.0.0.1:$kport,SSL://127.0.0.1:$sport"
driver_listeners=(--listener "PLAINTEXT=127.0.0.1:$kport" --listener "SSL=127.0.0.1:$sport")
if [ -n "$sasl" ]; then
	listeners+=",SASL_SSL://127.0.0.1:$saslport"
	driver_listeners+=(--listener "SASL_SSL=127.0.0.1:$saslport" --sasl-mechanism SCRAM-SHA-256
		--sasl-user kbench --sasl-password "kbench-$RANDOM$RANDOM")
fi

bench_server_start "streamlog.listeners = '$listeners'
ssl_cert_file = '$pki/server.crt'
ssl_key_file = '$pki/server.key'"

mkdir -p "$bench/results"
PGBIN=$pgbin "$python" "$here/security.py" ${driver_opts[@]+"${driver_opts[@]}"} \
	"${driver_listeners[@]}" --ssl-ca "$pki/ca.crt" --slbench "$tmp/slbench" --work-dir "$tmp" \
	--data-dir "$data" --server-log "$log" --output "$bench/results/kafka-security-latest.txt"
