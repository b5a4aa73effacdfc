#!/usr/bin/env python3
"""Check that src/ keeps its layers: no include and no call goes up.

    scripts/check_layers.py [--root DIR] [--nm NM]   check; exit 1 on a violation
    scripts/check_layers.py --graph                  print the include graph

Two checks, both against the one rule table below (ALLOWED):

- includes: every "streamlog/..." include of every .c and .h under src/ is
  read from the source; the included header's layer must be the includer's
  own or one it may use.  A header under a layer's internal/ folder may be
  included only by that layer's own files.  The project's headers must not
  include each other in a circle.
- calls: `nm` on the built object of each .c file under src/ (make builds
  them; `make check-layers` does so first): an undefined symbol of one
  layer's object that another layer's object defines must go along an
  allowed edge too.  This catches what an include check cannot: a function
  declared by hand with extern, or called through a header of the wrong
  layer that happens to be allowed.

Only the standard library: it runs wherever the build runs.
"""

import argparse
import os
import re
import subprocess
import sys

# Which layer may use which.  One entry per layer, with the reason; a layer
# may always use itself.  Written as "user: layers it may use".
ALLOWED = {
    # Kafka's wire format and the record codecs: pure functions over bytes,
    # compiled as frontend code for the unit tests and fuzzers, so they may
    # not depend on anything of ours (nor on a backend).
    "protocol": set(),
    # Settings (guc) and the struct of shared memory every layer reads
    # (shmem), and what every background worker does alike (worker: its
    # registration, signals, wait and error recovery), for the workers of
    # bgworkers and replication: below every layer, so they know none of
    # them.
    "common": set(),
    # The counters every door and worker adds to (requests, bytes in and
    # out, connections, the cleaner's progress) and the histograms of their
    # latencies: shared memory and plain arithmetic, read by the views and
    # the metrics endpoint.  Below everything that counts, so it knows none
    # of them but settings and the Kafka API table (names and versions).
    "metrics": {"common", "protocol"},
    # The only code touching the log relations.  It stores and returns the
    # bytes the codecs define (record batches), and reads settings and
    # shared memory; it knows nothing of who calls it (DESIGN section 1:
    # "nothing below it knows about sockets or the Kafka framing").
    "storage": {"protocol", "common", "cluster", "metrics"},
    # The cluster's metadata (CLUSTER.md section 2): the records of the
    # Raft log, the image they build, the controller's decisions and the
    # wrapper of the Raft library.  Pure code that runs inside libraft's
    # callbacks and in the unit tests: it knows nothing of ours.
    "cluster": set(),
    # The cluster as the doors use it: the view the Raft worker publishes
    # in shared memory, and requests handed to the controller (locally or
    # forwarded to it over libpq), waited on until the local catalog
    # applied them.  Storage below it writes that catalog.
    "metadata": {"cluster", "storage", "common", "metrics"},
    # The Kafka front door: decodes requests with protocol, serves them
    # through the storage API.
    "server": {"protocol", "storage", "common", "cluster", "metadata", "metrics"},
    # The SQL front door: one storage API for both doors (DESIGN section
    # 1), never the Kafka server; record types come from the codecs.
    "sqlapi": {"protocol", "storage", "common", "cluster", "metadata", "metrics"},
    # Partition data between nodes (CLUSTER.md section 3): the output
    # plugin that decodes appends from the WAL, the apply side that writes
    # them on a follower through storage, and SQL produce forwarded to a
    # leader.  The doors do not call it; its workers run it.
    "replication": {"protocol", "storage", "common", "cluster", "metadata", "metrics"},
    # Worker main loops: the broker runs the server's dispatch, the cleaner
    # runs storage's retention, the Raft worker runs the quorum and the
    # controller.  Nothing calls into them.
    "bgworkers": {"server", "storage", "protocol", "common", "cluster", "metadata",
                  "replication", "metrics"},
    # _PG_init: wires every layer's settings, shared memory, callbacks and
    # workers, so it may use all of them; nothing may use it.
    "entry": {"protocol", "common", "storage", "server", "sqlapi", "bgworkers",
              "cluster", "metadata", "replication", "metrics"},
}

# The one way a layer may look up past the table: read-only views.  Kafka
# group membership is not stored anywhere but in the group coordinator's
# shared memory (only committed offsets are in storage), so the SQL views of
# it (streamlog.kafka_groups(), group_members) ask the coordinator, through
# these functions of its public header, which copy the state under its lock
# and change nothing.  When group metadata moves into storage, as Kafka keeps
# it in __consumer_offsets, this entry goes.
# {(user layer, used layer): (header, {functions})}
READ_ONLY_VIEWS = {
    ("sqlapi", "server"): ("src/include/streamlog/server/group_coordinator.h",
                           {"SlGroupDescribe", "SlGroupList", "SlGroupStateName"}),
}

# Where each layer's files are, relative to the root: .c files in src/<x>/,
# headers in src/include/streamlog/<x>/; the three common modules and the
# entry point are single files.
LAYER_DIRS = ("protocol", "cluster", "storage", "metadata", "server", "sqlapi", "bgworkers",
              "replication", "metrics")
LAYER_FILES = {
    "src/guc.c": "common",
    "src/shmem.c": "common",
    "src/include/streamlog/guc.h": "common",
    "src/include/streamlog/shmem.h": "common",
    "src/worker.c": "common",
    "src/include/streamlog/worker.h": "common",
    "src/streamlog.c": "entry",
}
INCLUDE_ROOT = "src/include"
INTERNAL_DIR = "internal"

INCLUDE_RE = re.compile(r'^[ \t]*#\s*include\s+"([^"]+)"', re.MULTILINE)


class LayerError(Exception):
    pass


def shown(path):
    """A header as it is included: without src/include/ if it is there."""
    prefix = INCLUDE_ROOT + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def check_rules_acyclic():
    """The rule table itself must be a partial order, or no file could obey it."""
    state = {}

    def visit(layer, path):
        if state.get(layer) == "done":
            return
        if state.get(layer) == "open":
            raise LayerError("rule table has a circle: " + " -> ".join(path + [layer]))
        state[layer] = "open"
        for used in sorted(ALLOWED[layer]):
            if used not in ALLOWED:
                raise LayerError(f"rule table: {layer} uses unknown layer {used}")
            visit(used, path + [layer])
        state[layer] = "done"

    for layer in sorted(ALLOWED):
        visit(layer, [])


def layer_of(rel):
    """Layer of a file given relative to the root; None if in none."""
    if rel in LAYER_FILES:
        return LAYER_FILES[rel]
    parts = rel.split("/")
    if parts[:3] == ["src", "include", "streamlog"] and len(parts) > 4:
        return parts[3] if parts[3] in LAYER_DIRS else None
    if parts[0] == "src" and len(parts) > 2 and parts[1] in LAYER_DIRS:
        return parts[1]
    return None


def is_internal(rel):
    """Is rel a header under some layer's internal/ folder?"""
    parts = rel.split("/")
    return (parts[:3] == ["src", "include", "streamlog"] and len(parts) > 5
            and parts[4] == INTERNAL_DIR)


def source_files(root):
    """Every .c and .h under src/, relative to root, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "src")):
        dirnames.sort()
        for name in filenames:
            if name.endswith((".c", ".h")):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def read_includes(root, files):
    """{file: [(included header's path relative to root, line)]}"""
    includes = {}
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        edges = []
        for m in INCLUDE_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            name = m.group(1)
            # A quoted include is looked for next to the includer first: one
            # of ours written without the prefix must not slip through
            beside = os.path.normpath(os.path.join(os.path.dirname(rel), name))
            if os.path.exists(os.path.join(root, beside)):
                edges.append((beside, line))
            elif name.startswith("streamlog/"):
                edges.append((INCLUDE_ROOT + "/" + name, line))
        includes[rel] = edges
    return includes


def check_includes(root, includes):
    problems = []
    for rel, edges in sorted(includes.items()):
        user = layer_of(rel)
        if user is None:
            problems.append(f"{rel}: file is in no layer; add it to the rule table "
                            f"in scripts/check_layers.py")
            continue
        for header, line in edges:
            name = shown(header)
            if not os.path.exists(os.path.join(root, header)):
                problems.append(f"{rel}:{line}: includes {name}, which does not exist")
                continue
            used = layer_of(header)
            if used is None:
                problems.append(f"{rel}:{line}: includes {name}, which is in no layer")
            elif (used != user and used not in ALLOWED[user]
                  and READ_ONLY_VIEWS.get((user, used), (None,))[0] != header):
                problems.append(f"{rel}:{line}: includes {name}: "
                                f"{user} may not use {used}")
            elif is_internal(header) and not (
                    rel.startswith(f"src/{used}/") or (is_internal(rel) and used == user)):
                problems.append(f"{rel}:{line}: includes {name}: "
                                f"internal to {used}, for src/{used}/ only")
    return problems


def header_cycles(includes):
    """Circles among the project's headers (Tarjan's strongly connected components)."""
    graph = {rel: sorted({h for h, _ in edges if h in includes})
             for rel, edges in includes.items() if rel.endswith(".h")}
    index = {}
    low = {}
    stack = []
    on_stack = set()
    cycles = []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, []):
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(1000, 4 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def object_symbols(root, files, nm):
    """({object: (defined globals, undefined symbols)}, [objects not built])"""
    symbols = {}
    missing = []
    for rel in files:
        if not rel.endswith(".c"):
            continue
        obj = rel[:-2] + ".o"
        path = os.path.join(root, obj)
        if not os.path.exists(path):
            missing.append(obj)
            continue
        out = subprocess.run([nm, "-P", "-g", path], check=True,
                             capture_output=True, text=True).stdout
        defined, undefined = set(), set()
        for line in out.splitlines():
            fields = line.split()
            if len(fields) < 2:
                continue
            name, kind = fields[0], fields[1]
            if kind in ("U", "w", "v"):
                undefined.add(name)
            else:
                defined.add(name)
        symbols[obj] = (defined, undefined)
    return symbols, missing


def call_edges(symbols):
    """[(user object, symbol, defining object)] across objects."""
    definer = {}
    for obj, (defined, _) in symbols.items():
        for name in defined:
            definer.setdefault(name, obj)
    edges = []
    for obj, (_, undefined) in sorted(symbols.items()):
        for name in sorted(undefined):
            other = definer.get(name)
            if other is not None and other != obj:
                edges.append((obj, name, other))
    return edges


def check_calls(edges):
    problems = []
    for obj, name, other in edges:
        user, used = layer_of(obj[:-2] + ".c"), layer_of(other[:-2] + ".c")
        if user is None or used is None:
            continue        # reported by the include check
        if used != user and used not in ALLOWED[user] and \
                name not in READ_ONLY_VIEWS.get((user, used), (None, set()))[1]:
            problems.append(f"{obj}: calls {name} of {other}: {user} may not use {used}")
    return problems


def print_graph(includes, edges):
    layer_includes = {}
    for rel, inc in includes.items():
        for header, _ in inc:
            key = (layer_of(rel), layer_of(header))
            if key[0] != key[1]:
                layer_includes[key] = layer_includes.get(key, 0) + 1
    layer_calls = {}
    for obj, _, other in edges:
        key = (layer_of(obj[:-2] + ".c"), layer_of(other[:-2] + ".c"))
        if key[0] != key[1]:
            layer_calls[key] = layer_calls.get(key, 0) + 1
    print("# layer -> layer (includes, calls)")
    for key in sorted(set(layer_includes) | set(layer_calls), key=str):
        print(f"{key[0]} -> {key[1]}  includes={layer_includes.get(key, 0)} "
              f"calls={layer_calls.get(key, 0)}")
    print()
    print("# file -> file (includes)")
    for rel in sorted(includes):
        for header, _ in includes[rel]:
            print(f"{rel} -> {shown(header)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."),
                        help="the project's folder (default: this script's parent)")
    parser.add_argument("--nm", default=os.environ.get("NM", "nm"), help="nm to run")
    parser.add_argument("--graph", action="store_true",
                        help="print the include graph, layer to layer and file to file")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)

    try:
        check_rules_acyclic()
        files = source_files(root)
        includes = read_includes(root, files)
        problems = check_includes(root, includes)
        for cycle in header_cycles(includes):
            problems.append("include circle: " + " -> ".join(cycle + cycle[:1]))
        symbols, missing = object_symbols(root, files, args.nm)
        edges = call_edges(symbols)
        if args.graph:
            if missing:
                print("# calls of objects not built are not counted: " + ", ".join(missing))
            print_graph(includes, edges)
            return 0
        problems += [f"{obj}: not built, so its calls are not checked (run make first)"
                     for obj in missing]
        problems += check_calls(edges)
    except LayerError as e:
        print(f"check-layers: {e}", file=sys.stderr)
        return 1

    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} violation(s) of the layering "
              f"(rules in scripts/check_layers.py)")
        return 1
    print(f"check-layers: {len(includes)} files and their objects keep the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
