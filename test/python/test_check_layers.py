"""scripts/check_layers.py (make check-layers) catches what it is for.

No server: the sources are copied to a temporary folder and built there
once (make check-layers builds the objects it reads with nm); each test then
takes its own copy of the built tree, puts one deliberate violation in it,
and runs the check.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")

def copy_sources(dst):
    """The files a build of the objects needs, without build output."""
    os.makedirs(dst)
    for name in ("Makefile", "streamlog.control"):
        shutil.copy2(os.path.join(ROOT, name), dst)
    for name in ("src", "scripts"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(dst, name),
                        ignore=shutil.ignore_patterns("*.o", "*.bc", "*.d", "*.so",
                                                      "__pycache__"))


def check(tree, build=False):
    """Run the check on tree (building its objects first if build); (rc, lines)."""
    if build:
        cmd = ["make", "-s", "-j2", "check-layers", f"PG_CONFIG={PG_CONFIG}"]
    else:
        cmd = [sys.executable, os.path.join(tree, "scripts", "check_layers.py"),
               "--root", tree]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


def violations(lines):
    """The violations reported, without line numbers (they move with edits)."""
    found = set()
    for line in lines:
        if line.startswith("src/"):
            found.add(re.sub(r"^(\S+?):\d+:", r"\1:", line))
    return found


@pytest.fixture(scope="module")
def built_tree(tmp_path_factory):
    tree = str(tmp_path_factory.mktemp("layers") / "built")
    copy_sources(tree)
    rc, lines = check(tree, build=True)
    return tree, rc, lines


@pytest.fixture
def tree(built_tree, tmp_path):
    copy = str(tmp_path / "tree")
    shutil.copytree(built_tree[0], copy, symlinks=True)
    return copy


def append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def insert_include(path, header):
    """Add #include "header" after the file's last streamlog include."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    last = list(re.finditer(r'^#include "streamlog/[^"]+"\n', text, re.MULTILINE))[-1]
    text = text[:last.end()] + f'#include "{header}"\n' + text[last.end():]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_untouched_tree_keeps_the_layers(built_tree):
    _, rc, lines = built_tree
    assert rc == 0, "\n".join(lines)
    assert not violations(lines), "\n".join(lines)
    assert any("keep the layers" in line for line in lines), "\n".join(lines)


def test_include_going_up_fails(tree):
    insert_include(os.path.join(tree, "src/storage/retention.c"),
                   "streamlog/server/kafka_errors.h")
    rc, lines = check(tree)
    assert rc != 0
    assert ("src/storage/retention.c: includes streamlog/server/kafka_errors.h: "
            "storage may not use server") in violations(lines), "\n".join(lines)


def test_call_going_up_fails(tree):
    # Declared by hand, so that no include gives it away: only nm sees it
    append(os.path.join(tree, "src/storage/retention.c"), """
extern int16 SlKafkaErrorForSqlstate(int sqlerrcode, int16 api_key);
extern int16 sl_layers_probe(void);

int16
sl_layers_probe(void)
{
	return SlKafkaErrorForSqlstate(0, 0);
}
""")
    rc, lines = check(tree, build=True)
    assert rc != 0
    assert ("src/storage/retention.o: calls SlKafkaErrorForSqlstate of "
            "src/server/kafka_errors.o: storage may not use server") \
        in violations(lines), "\n".join(lines)
    assert not any("retention.c" in v for v in violations(lines)), "\n".join(lines)


def test_include_without_the_prefix_is_checked_too(tree):
    # Quoted includes are found next to the includer first
    insert_include(os.path.join(tree, "src/include/streamlog/storage/internal/segments.h"),
                   "../../server/kafka_errors.h")
    rc, lines = check(tree)
    assert rc != 0
    assert ("src/include/streamlog/storage/internal/segments.h: includes "
            "streamlog/server/kafka_errors.h: storage may not use server") \
        in violations(lines), "\n".join(lines)


def test_sql_api_calling_the_kafka_server_fails(tree):
    insert_include(os.path.join(tree, "src/sqlapi/read_sql.c"),
                   "streamlog/server/kafka_errors.h")
    rc, lines = check(tree)
    assert rc != 0
    assert ("src/sqlapi/read_sql.c: includes streamlog/server/kafka_errors.h: "
            "sqlapi may not use server") in violations(lines), "\n".join(lines)


def test_sql_api_may_only_read_the_group_views(tree):
    """The SQL views of Kafka groups read the coordinator through three
    functions; any other call into it is refused."""
    append(os.path.join(tree, "src/sqlapi/groups_sql.c"),
           "\nvoid forget_from_sql(void);\n"
           "void forget_from_sql(void) { bool found; SlGroupForget(\"g\", &found); }\n")
    subprocess.run(["make", "-s", "src/sqlapi/groups_sql.o", f"PG_CONFIG={PG_CONFIG}"],
                   cwd=tree, check=True, capture_output=True)
    rc, lines = check(tree)
    assert rc != 0
    assert ("src/sqlapi/groups_sql.o: calls SlGroupForget of src/server/groups/admin.o: "
            "sqlapi may not use server") in violations(lines), "\n".join(lines)
    assert not any("SlGroupDescribe" in line for line in lines), "\n".join(lines)


def test_internal_header_outside_its_layer_fails(tree):
    insert_include(os.path.join(tree, "src/server/handlers/fetch.c"),
                   "streamlog/storage/internal/partition_state.h")
    rc, lines = check(tree)
    assert rc != 0
    assert ("src/server/handlers/fetch.c: includes "
            "streamlog/storage/internal/partition_state.h: internal to storage, "
            "for src/storage/ only") in violations(lines), "\n".join(lines)


def test_include_circle_fails(tree):
    insert_include(os.path.join(tree, "src/include/streamlog/storage/internal/segments.h"),
                   "streamlog/storage/internal/partition_state.h")
    insert_include(os.path.join(tree, "src/include/streamlog/storage/internal/"
                                "partition_state.h"),
                   "streamlog/storage/internal/segments.h")
    rc, lines = check(tree)
    assert rc != 0
    circles = [line for line in lines if line.startswith("include circle:")]
    assert circles, "\n".join(lines)
    assert "storage/internal/partition_state.h" in circles[0]
    assert "storage/internal/segments.h" in circles[0]


def test_file_in_no_layer_fails(tree):
    append(os.path.join(tree, "src/stray.c"), '#include "streamlog/guc.h"\n')
    rc, lines = check(tree)
    assert rc != 0
    assert any(line.startswith("src/stray.c: file is in no layer") for line in lines), \
        "\n".join(lines)


def test_graph_lists_layers_and_files(built_tree):
    script = os.path.join(built_tree[0], "scripts", "check_layers.py")
    out = subprocess.run([sys.executable, script, "--root", built_tree[0], "--graph"],
                         check=True, capture_output=True, text=True).stdout
    assert re.search(r"^server -> storage  includes=\d+ calls=\d+$", out, re.MULTILINE), out
    assert "src/include/streamlog/server/handlers.h -> streamlog/storage/storage.h" in out
