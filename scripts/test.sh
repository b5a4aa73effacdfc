#!/usr/bin/env bash
# Runs every test: installs missing packages, builds and installs streamlog,
# checks the layering (make check-layers), then runs the C unit tests, the
# pg_regress suites (REGRESS in the Makefile), the isolationtester specs
# (ISOLATION) and the pytest suite in test/python.
#
#   scripts/test.sh [pytest arguments...]     e.g. scripts/test.sh -k retention
#
# Exits non-zero if any stage failed.  The last line printed is pytest's
# summary.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
cd "$ROOT" || exit 1

case "${1:-}" in
    -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac

stage() { printf '\n=== %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
    as_pg=(runuser -u postgres --)
else
    as_root=(sudo)
    as_pg=()
fi

stage "dependencies"
"$ROOT/scripts/deps.sh" || die "installing dependencies failed"

stage "build (warnings are errors)"
# COPT is PostgreSQL's way of adding compiler flags to a PGXS build; the
# unit tests below take it too
make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" COPT=-Werror || die "build failed"
"${as_root[@]}" make install PG_CONFIG="$PG_CONFIG" || die "make install failed"

failed=()

stage "generated protocol code is up to date (make check-generated)"
if ! make -s check-generated PG_CONFIG="$PG_CONFIG"; then
    failed+=("check-generated")
fi

stage "layers (make check-layers)"
if ! make -s check-layers PG_CONFIG="$PG_CONFIG"; then
    failed+=("check-layers")
fi

stage "C unit tests with ASan and UBSan (make unit UNIT_SANITIZE=1)"
# Seeded random loops; UNIT_SEED=<n> or UNIT_SEED=random in the environment
# changes the seed, which each test prints
if ! make unit UNIT_SANITIZE=1 COPT=-Werror PG_CONFIG="$PG_CONFIG"; then
    failed+=("unit")
fi

stage "pg_regress suites and isolation specs (make installcheck)"
# make installcheck starts temporary instances (REGRESS_OPTS, ISOLATION_OPTS),
# whose server refuses to run as root: when we are root it runs as postgres,
# on a copy of what it reads, since the checkout may not be readable by that
# user.  Otherwise the copy keeps the checkout free of test output.
check_dir=$(mktemp -d /tmp/streamlog-installcheck.XXXXXX)
mkdir -p "$check_dir/test"
cp -R "$ROOT/Makefile" "$ROOT/sql" "$ROOT/expected" "$check_dir/"
cp -R "$ROOT/test/regress.conf" "$ROOT/test/isolation" "$check_dir/test/"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$check_dir"
fi
if (cd "$check_dir" && "${as_pg[@]}" make -s --no-print-directory installcheck \
        PG_CONFIG="$PG_CONFIG"); then
    rm -rf "$check_dir"
else
    failed+=("installcheck")
    for f in "$check_dir/regression.diffs" "$check_dir/output_iso/regression.diffs"; do
        if [ -s "$f" ]; then
            echo "--- $f"
            cat "$f"
        fi
    done
    for f in "$check_dir/log/postmaster.log" "$check_dir/output_iso/log/postmaster.log"; do
        if [ -s "$f" ]; then
            echo "--- last lines of $f"
            tail -n 50 "$f"
        fi
    done
    rm -rf "$check_dir/tmp_check" "$check_dir/tmp_check_iso"
    echo "make installcheck failed; its output is kept in $check_dir"
fi

stage "pytest"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED so far: ${failed[*]} (running pytest anyway)"
fi
/usr/bin/python3 -m pytest -q -p no:cacheprovider test/python "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    # 5 = no tests collected, which counts as a failure too
    failed+=("pytest")
fi

[ "${#failed[@]}" -eq 0 ]
