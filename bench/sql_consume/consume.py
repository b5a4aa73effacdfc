#!/usr/bin/env python3
"""What SQL consume() on a node that does not coordinate the group costs
(README, "SQL consume() on any node"), next to the same load on the
group's coordinator (the peer), in one run on a 3-node loopback cluster
(test/python's Cluster; replication factor 3, min.insync.replicas 2):

  per call      one consume() of --batch records per autocommit
                transaction, one client, until the topic is drained: on
                the coordinator (local claim, commit waits for the offsets'
                replication) vs on another node (remote claim, PREPARE and
                COMMIT PREPARED on the coordinator, settle)
  throughput    records/s of the same loops

Topic: --partitions partitions, --records records of 100 B.  Each side
consumes the whole topic with a group of its own.  Prints p50 / p99 / mean
in ms and records/s.

    PG_CONFIG=... python3 bench/sql_consume/consume.py [--records N] [--batch B]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

from cluster import Cluster  # noqa: E402
from test_cluster_groups import CONF, coordinator_of, ensure_offsets_topic  # noqa: E402

CONSUME = "SELECT count(*) FROM streamlog.consume(%s, %s, %s)"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def drain(node, group, topic, batch, total):
    """Consume the whole topic; per-call latencies (ms) and records/s"""
    calls = []
    got = 0
    with node.connect() as conn:
        t0 = time.perf_counter()
        while got < total:
            t = time.perf_counter()
            (n,), = conn.execute(CONSUME, (group, topic, batch)).fetchall()
            calls.append((time.perf_counter() - t) * 1000)
            got += n
        rate = got / (time.perf_counter() - t0)
    return calls, rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sl-sqlconsume-bench-")
    c = Cluster(3, base, name="sqlconsumebench", conf=CONF)
    try:
        c.start()
        c.wait_ready()
        topic = "bench.consume"
        local_group, remote_group = "bench-local", "bench-remote"
        ensure_offsets_topic(c, local_group)
        c.node(1).sql("SELECT streamlog.create_topic(%s, %s, "
                      "'{\"min.insync.replicas\": \"2\"}', 3)", (topic, args.partitions))
        c.wait_topic_everywhere(topic)
        leaders = c.leaders(topic)
        per = args.records // args.partitions
        for p in range(args.partitions):
            c.node(leaders[p]).sql(
                "SELECT streamlog.produce(%s, NULL, repeat('x', 100), partition => %s) "
                "FROM generate_series(1, %s)", (topic, p, per))
        total = per * args.partitions

        def replicated():
            return all(hw >= per for n in c.node_ids for _, hw in c.node(n).sql(
                "SELECT partition, high_watermark FROM streamlog.partitions "
                "WHERE topic = %s", (topic,)))
        c.wait_for(replicated, 120, "the topic on every node")
        local_node = c.node(coordinator_of(c, local_group))
        remote_coordinator = coordinator_of(c, remote_group)
        remote_node = c.node(next(n for n in c.node_ids if n != remote_coordinator))
        local_calls, local_rate = drain(local_node, local_group, topic, args.batch, total)
        remote_calls, remote_rate = drain(remote_node, remote_group, topic, args.batch,
                                          total)
    finally:
        c.cleanup()

    print(f"consume() of {args.batch} records per transaction, {total} records, "
          f"{args.partitions} partitions, RF 3")
    print(f"{'per call, ms':<40}  p50      p99     mean   records/s")
    for name, calls, rate in (("on the coordinator (peer)", local_calls, local_rate),
                              ("on another node", remote_calls, remote_rate)):
        print(f"{name:<40} {pct(calls, 0.5):6.2f} {pct(calls, 0.99):8.2f} "
              f"{statistics.mean(calls):8.2f} {rate:10.0f}")
    print(f"another node / coordinator: {remote_rate / local_rate:.2f}x records/s")


if __name__ == "__main__":
    main()
