#!/usr/bin/env bash
# Runs every test: installs missing packages, builds and installs streamlog,
# then runs the C unit tests, the pg_regress suites (REGRESS in the Makefile),
# the isolationtester specs (ISOLATION) and the pytest suite in test/python.
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
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
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

stage "C unit tests with ASan and UBSan (make unit UNIT_SANITIZE=1)"
# Seeded random loops; UNIT_SEED=<n> or UNIT_SEED=random in the environment
# changes the seed, which each test prints
if ! make unit UNIT_SANITIZE=1 COPT=-Werror PG_CONFIG="$PG_CONFIG"; then
    failed+=("unit")
fi

stage "pg_regress"
# shellcheck disable=SC2016  # $(REGRESS) is for make, not the shell
suites=$(make -s --no-print-directory PG_CONFIG="$PG_CONFIG" \
    --eval='print-REGRESS: ; @echo $(REGRESS)' print-REGRESS)
if [ -z "$suites" ]; then
    echo "no REGRESS suites in the Makefile"
else
    # pg_regress and its temporary server run as postgres when we are root,
    # and the checkout may not be readable by that user: work on a copy.
    regress_dir=$(mktemp -d /tmp/streamlog-regress.XXXXXX)
    for d in sql expected input output; do
        if [ -d "$ROOT/$d" ]; then
            cp -R "$ROOT/$d" "$regress_dir/"
        fi
    done
    cp "$ROOT/test/regress.conf" "$regress_dir/regress.conf"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$regress_dir"
    fi
    pg_regress="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
    # shellcheck disable=SC2086  # suites is a word list
    if (cd "$regress_dir" && "${as_pg[@]}" "$pg_regress" \
            --temp-instance="$regress_dir/instance" \
            --temp-config="$regress_dir/regress.conf" \
            --inputdir="$regress_dir" \
            --outputdir="$regress_dir" \
            --bindir="$("$PG_CONFIG" --bindir)" \
            --dbname=contrib_regression \
            $suites); then
        rm -rf "$regress_dir"
    else
        failed+=("pg_regress")
        if [ -s "$regress_dir/regression.diffs" ]; then
            echo "--- $regress_dir/regression.diffs"
            cat "$regress_dir/regression.diffs"
        fi
        if [ -s "$regress_dir/log/postmaster.log" ]; then
            echo "--- last lines of $regress_dir/log/postmaster.log"
            tail -n 50 "$regress_dir/log/postmaster.log"
        fi
        rm -rf "$regress_dir/instance"
        echo "pg_regress failed; its output is kept in $regress_dir"
    fi
fi

stage "pg_isolation_regress"
# shellcheck disable=SC2016  # $(ISOLATION) is for make, not the shell
specs=$(make -s --no-print-directory PG_CONFIG="$PG_CONFIG" \
    --eval='print-ISOLATION: ; @echo $(ISOLATION)' print-ISOLATION)
if [ -z "$specs" ]; then
    echo "no ISOLATION specs in the Makefile"
else
    # As for pg_regress: a copy readable by the server's user
    iso_dir=$(mktemp -d /tmp/streamlog-isolation.XXXXXX)
    cp -R "$ROOT/test/isolation/specs" "$ROOT/test/isolation/expected" "$iso_dir/"
    cp "$ROOT/test/regress.conf" "$iso_dir/regress.conf"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$iso_dir"
    fi
    pg_isolation_regress="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
    # shellcheck disable=SC2086  # specs is a word list
    if (cd "$iso_dir" && "${as_pg[@]}" "$pg_isolation_regress" \
            --temp-instance="$iso_dir/instance" \
            --temp-config="$iso_dir/regress.conf" \
            --inputdir="$iso_dir" \
            --outputdir="$iso_dir" \
            --bindir="$("$PG_CONFIG" --bindir)" \
            --dbname=contrib_regression \
            --load-extension=streamlog \
            $specs); then
        rm -rf "$iso_dir"
    else
        failed+=("pg_isolation_regress")
        if [ -s "$iso_dir/regression.diffs" ]; then
            echo "--- $iso_dir/regression.diffs"
            cat "$iso_dir/regression.diffs"
        fi
        if [ -s "$iso_dir/log/postmaster.log" ]; then
            echo "--- last lines of $iso_dir/log/postmaster.log"
            tail -n 50 "$iso_dir/log/postmaster.log"
        fi
        rm -rf "$iso_dir/instance"
        echo "pg_isolation_regress failed; its output is kept in $iso_dir"
    fi
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
