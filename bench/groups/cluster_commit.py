#!/usr/bin/env python3
"""What a replicated __consumer_offsets costs an OffsetCommit (README,
"Consumer groups on a cluster"): the latency of one commit, one partition,
from one client on the group's coordinator, with __consumer_offsets of
replication factor 3 (min.insync.replicas 2: answered once the in-sync
replicas hold the record) next to replication factor 1 (answered after the
coordinator's durable commit), in one run: two 3-node loopback clusters
(test/python's Cluster) one after the other, the same load.

    PG_CONFIG=... python3 bench/groups/cluster_commit.py [--commits N]

Prints p50 / p99 / mean in ms and commits/s.  No targets.
"""

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

import kafka_helpers as kh  # noqa: E402
from cluster import Cluster  # noqa: E402

OFFSET_COMMIT = 8
GROUP = "bench-group"
TOPIC = "bench-commits"
PARTITIONS = 5


def java_hash(s):
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % PARTITIONS


def commit_frame(correlation_id, offset):
    body = (kh.string(GROUP) + struct.pack(">i", -1) + kh.string("")
            + struct.pack(">q", -1) + struct.pack(">i", 1) + kh.string(TOPIC)
            + struct.pack(">i", 1) + struct.pack(">iq", 0, offset) + kh.string(""))
    return kh.request_frame(OFFSET_COMMIT, 2, correlation_id, body)


def commit_error(body):
    r = kh.Reader(body)
    r.i32()
    r.string()
    r.i32()
    r.i32()
    return r.i16()


def measure(base, rf, commits):
    conf = {"streamlog.default_replication_factor": rf,
            "streamlog.min_insync_replicas": min(rf, 2),
            "streamlog.offsets_topic_num_partitions": PARTITIONS}
    c = Cluster(3, base, conf=conf, name=f"commit-rf{rf}")
    try:
        c.start()
        c.wait_ready()
        c.node(1).sql("SELECT streamlog.create_topic(%s, 1)", (TOPIC,))
        c.wait_topic_everywhere(TOPIC)
        p = offsets_partition(GROUP)
        offset = 0

        def coordinator():
            return c.leaders("__consumer_offsets").get(p)

        # the first commit creates __consumer_offsets and loads the group
        def first():
            nonlocal offset
            for n in c:
                with kh.RawClient(n.kafka_bootstrap, timeout=30) as client:
                    offset += 1
                    if commit_error(client.call(commit_frame, offset)) == 0:
                        return True
            return False
        c.wait_for(first, 120, "a first commit")
        c.wait_topic_everywhere("__consumer_offsets",
                                check=lambda s: all(len(x[3]) == rf for x in s[4].values()))
        node = c.node(coordinator())

        def loaded():
            nonlocal offset
            with kh.RawClient(node.kafka_bootstrap, timeout=30) as client:
                offset += 1
                return commit_error(client.call(commit_frame, offset)) == 0
        c.wait_for(loaded, 60, "the coordinator's group loaded")
        times = []
        with kh.RawClient(node.kafka_bootstrap, timeout=30) as client:
            for _ in range(commits):
                offset += 1
                t = time.perf_counter()
                error = commit_error(client.call(commit_frame, offset))
                times.append((time.perf_counter() - t) * 1000)
                if error:
                    raise SystemExit(f"commit failed with Kafka error {error}")
        return times
    finally:
        c.cleanup()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=300)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="streamlog-bench-commit-")
    rows = []
    for rf in (1, 3):
        t = measure(base, rf, args.commits)
        rows.append((rf, pct(t, 0.5), pct(t, 0.99), statistics.mean(t), 1000 / statistics.mean(t)))
    print(f"OffsetCommit on the coordinator, one client, {args.commits} commits")
    print(f"{'__consumer_offsets':<24}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'commits/s':>12}")
    for rf, p50, p99, mean, rate in rows:
        label = f"RF={rf}" + (" (acks=all)" if rf > 1 else " (peer)")
        print(f"{label:<24}{p50:>10.2f}{p99:>10.2f}{mean:>10.2f}{rate:>12.0f}")


if __name__ == "__main__":
    main()
