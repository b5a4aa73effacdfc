#!/usr/bin/env python3
"""What reading a partition through its leader costs (README, "SQL
consume() on any node", partitions this node has no copy of), next to
reading a partition this node leads (the peer), in one run on a 3-node
loopback cluster (test/python's Cluster):

  read()    one streamlog.read() of --batch records per call, from offset 0
            to the end, on node 1: of the partitions it leads (local) vs of
            those led by nodes 2 and 3 (through the leader)

Topic: replication factor 1, 6 partitions (two led by each node),
--records records of 100 B per partition.  Prints p50 / p99 in ms and
records/s.

    PG_CONFIG=... python3 bench/remote_read/remote_read.py [--records N] [--batch B]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

from cluster import Cluster  # noqa: E402
from test_cluster_groups import CONF  # noqa: E402

READ = "SELECT count(*), max(\"offset\") FROM streamlog.read(%s, %s, %s, %s)"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def drain(conn, topic, partitions, per, batch):
    calls = []
    got = 0
    t0 = time.perf_counter()
    for p in partitions:
        offset = 0
        while offset < per:
            t = time.perf_counter()
            (n, last), = conn.execute(READ, (topic, p, offset, batch)).fetchall()
            calls.append((time.perf_counter() - t) * 1000)
            got += n
            offset = last + 1
    return calls, got / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sl-remoteread-bench-")
    c = Cluster(3, base, name="remotereadbench", conf=CONF)
    try:
        c.start()
        c.wait_ready()
        topic = "bench.remote_read"
        c.node(1).sql("SELECT streamlog.create_topic(%s, 6, "
                      "'{\"min.insync.replicas\": \"1\"}', 1)", (topic,))
        c.wait_topic_everywhere(topic)
        leaders = c.leaders(topic)
        for p in range(6):
            c.node(leaders[p]).sql(
                "SELECT streamlog.produce(%s, NULL, repeat('x', 100), partition => %s) "
                "FROM generate_series(1, %s)", (topic, p, args.records))
        local = [p for p in range(6) if leaders[p] == 1]
        remote = [p for p in range(6) if leaders[p] != 1]
        with c.node(1).connect(autocommit=True) as conn:
            local_calls, local_rate = drain(conn, topic, local, args.records, args.batch)
            remote_calls, remote_rate = drain(conn, topic, remote, args.records, args.batch)
    finally:
        c.cleanup()

    print(f"read() of {args.batch} records per call, {args.records} records of 100 B "
          f"per partition, RF 1, on node 1")
    print(f"{'per call, ms':<44}  p50      p99   records/s")
    for name, calls, rate in ((f"partitions {local}, led here (peer)", local_calls, local_rate),
                              (f"partitions {remote}, through the leader", remote_calls,
                               remote_rate)):
        print(f"{name:<44} {pct(calls, 0.5):6.2f} {pct(calls, 0.99):8.2f} {rate:10.0f}")
    print(f"through the leader / led here: {remote_rate / local_rate:.2f}x records/s")


if __name__ == "__main__":
    main()
