#!/usr/bin/env bash
# Installs the Debian packages streamlog needs that are not installed yet,
# and the npm packages of the kafkajs tests (test/js/node_modules).
#
#   scripts/deps.sh               build, run and test dependencies
#   scripts/deps.sh --build-only  only what building and running needs
#
# Does nothing (quickly) when everything is already installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BUILD_PKGS=(
    build-essential
    postgresql-15
    postgresql-server-dev-15
    libzstd-dev
    liblz4-dev
    libsnappy-dev
    zlib1g-dev
    libssl-dev
    libraft-dev
    libuv1-dev
)

TEST_PKGS=(
    python3-pytest
    python3-psycopg
    python3-confluent-kafka
    python3-kafka
    python3-snappy
    python3-lz4
    python3-zstandard
    kcat
    openssl
    postgresql-15-pgq3
    librdkafka-dev
    clang-14
    libclang-rt-14-dev
    libfuzzer-14-dev
    iproute2
    prometheus
)

usage() {
    sed -n '2,7s/^# \{0,1\}//p' "$0"
}

build_only=0
for arg in "$@"; do
    case "$arg" in
        --build-only) build_only=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "deps.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

wanted=("${BUILD_PKGS[@]}")
if [ "$build_only" -eq 0 ]; then
    wanted+=("${TEST_PKGS[@]}")
    # Node.js (for kafkajs tests) may come with the image rather than apt;
    # only fall back to Debian's packages when there is no node at all.
    if ! command -v node >/dev/null 2>&1; then
        wanted+=(nodejs npm)
    elif ! command -v npm >/dev/null 2>&1; then
        echo "deps.sh: warning: node is installed but npm is not" >&2
    fi
fi

# kafkajs and its lock file live in test/js; node_modules is not tracked.
# A failure is not fatal: the kafkajs test tries again and skips, saying
# why, if it cannot install them either.
install_js_deps() {
    local js_dir="$ROOT/test/js"
    if [ "$build_only" -eq 1 ] || [ ! -f "$js_dir/package.json" ] ||
        [ -d "$js_dir/node_modules" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "deps.sh: warning: no npm, test/js dependencies not installed" >&2
        return 0
    fi
    echo "deps.sh: installing test/js dependencies with npm"
    if ! npm install --no-audit --no-fund --prefix "$js_dir"; then
        echo "deps.sh: warning: npm install in test/js failed" >&2
    fi
}

missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps.sh: all ${#wanted[@]} packages already installed"
    install_js_deps
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
else
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: missing packages and no sudo: ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo)
fi

echo "deps.sh: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
install_js_deps
