#!/usr/bin/python3
"""Paged read() on two servers side by side: the CPU time of the backend per
record, each query run on both servers in turn (the order alternating), so
that both builds of the extension meet the same load on a shared machine.

    bench/read_pair.py --a 'host=... port=...' --b 'host=... port=...' \\
        --topic bench_set [--pairs 15] [--records 1000000]

Both servers hold the same records in partition 0 of the topic (a copy of
one data directory, say) and run on this machine (the backend's CPU time
is read from /proc/<pid>/schedstat). A table plain(k text, v text) of the
same number of values, if present, is scanned too, as the yardstick that
runs no streamlog code: how far its figures differ between the servers is
what they differ by without any change.
"""
import argparse
import statistics

import psycopg


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="conninfo of the server with build A")
    ap.add_argument("--b", required=True, help="conninfo of the server with build B")
    ap.add_argument("--topic", default="bench_set")
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--records", type=int, default=1000000)
    args = ap.parse_args()
    m = args.records
    conns = {name: psycopg.connect(ci, autocommit=True) for name, ci in (("A", args.a), ("B", args.b))}
    pids, start, size, plain = {}, {}, {}, True
    for name, c in conns.items():
        pids[name] = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        start[name] = c.execute("SELECT log_start_offset FROM streamlog.partitions "
                                "WHERE topic = %s AND partition = 0", (args.topic,)).fetchone()[0]
        size[name] = c.execute("SELECT sum(length(value)) FROM streamlog.read(%s, 0, %s, %s)",
                               (args.topic, start[name], m)).fetchone()[0]
        plain = plain and c.execute("SELECT to_regclass('plain') IS NOT NULL").fetchone()[0]
        c.execute("SET max_parallel_workers_per_gather = 0")
    if size["A"] != size["B"]:
        raise SystemExit(f"the servers hold different records: {size['A']} and {size['B']} bytes")
    queries = []
    for page in (1000, 100):
        queries.append((f"read(), pages of {page:,}",
                        "SELECT sum(length(value)) FROM generate_series(0, %s) p, "
                        "LATERAL streamlog.read(%s, 0, %s + p * %s, %s) r",
                        lambda name, page=page: (m // page - 1, args.topic, start[name], page, page)))
    if plain:
        queries.append(("plain scan", "SELECT sum(octet_length(v)) FROM plain", lambda name: None))
    print(f"{'CPU ns/record':22} {'A median (least)':>18} {'B median (least)':>18}  B lower")
    for label, sql, params in queries:
        got = {name: [] for name in conns}
        order = list(conns)
        for i in range(args.pairs + 1):
            for name in (order if i % 2 else order[::-1]):
                c = conns[name]
                before = cpu_ns(pids[name])
                c.execute(sql, params(name)).fetchone()
                if i:  # the first pair warms the caches
                    got[name].append((cpu_ns(pids[name]) - before) / m)
        lower = sum(1 for a, b in zip(got["A"], got["B"]) if b < a)
        print(f"{label:22} " + " ".join(f"{statistics.median(got[n]):10.0f} ({min(got[n]):5.0f})"
                                       for n in conns) + f"  {lower}/{args.pairs}")


if __name__ == "__main__":
    main()
