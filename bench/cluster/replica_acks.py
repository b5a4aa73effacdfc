"""The leader's side of replicated partitions, measured on a three-node
cluster on loopback (test/python/cluster.py) with the installed streamlog
of $PG_CONFIG:

  a. one produce round trip of 1 record (100 B value) to a partition led by
     node 1, one client, as a Kafka client sees it: acks=1 and acks=all on a
     partition without other replicas (RF=1), next to acks=all on a
     partition with three (RF=3) whose followers the bench plays itself:
     right after sending, it reports both followers at the new log end with
     streamlog._replica_progress() over one SQL connection, then waits for
     the answer.  The RF=3 figure is the leader's whole acks=all path
     (commit, park, two reports, recheck, answer) without the stream that
     will carry the records, so it is a floor for what replication costs.
  b. reports: streamlog._replica_progress() calls per second from one
     connection, one partition per call and 64 partitions per call.

  /usr/bin/python3 bench/cluster/replica_acks.py [--quick] [--work-dir DIR]

Medians of the round trips; no assertion on time (see bench/README.md).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(REPO, "test", "python"))

from benchlib import log, table  # noqa: E402
import cluster as cl  # noqa: E402
import kafka_helpers as kh  # noqa: E402


def make_topic(c, name, partitions, replicas):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": c.node(1).kafka_bootstrap})
    admin.create_topics([NewTopic(name, partitions, replica_assignment=[list(replicas)] * partitions,
                                  config={"min.insync.replicas": "1"})],
                        operation_timeout=30)[name].result(timeout=60)
    topic_id, _u, _n, _c, parts = c.wait_topic_everywhere(
        name, deadline=120, check=lambda s: all(v[0] == 1 for v in s[4].values()))
    return topic_id, parts[0][1]


def one_record():
    return kh.record_batch([(b"k", b"x" * 100, [], kh.now_ms())])


def round_trips(c, name, acks, n, reporter=None):
    """Seconds of n produce round trips; reporter(end) after each send"""
    out = []
    with kh.RawClient(c.node(1).kafka_bootstrap, timeout=60) as k:
        for i in range(n):
            cid = k.next_correlation_id()
            t0 = time.perf_counter()
            k.send(kh.produce_request(cid, name, [(0, one_record())], acks=acks,
                                      timeout_ms=30000))
            if reporter:
                reporter(i + 1)
            got, body = k.recv_frame()
            out.append(time.perf_counter() - t0)
            err, _base = kh.parse_produce_v3(body)[(name, 0)]
            if got != cid or err != 0:
                raise RuntimeError(f"produce to {name} failed: error {err}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work-dir", default=None)
    args = ap.parse_args()
    n = 200 if args.quick else 2000
    calls = 200 if args.quick else 2000
    base = args.work_dir or tempfile.mkdtemp(prefix="streamlog-acks-", dir="/var/tmp")
    c = cl.Cluster(3, base, name="acksbench",
                   conf={"streamlog.replica_lag_time_max_ms": "3600000"})
    try:
        c.start()
        cl.require_cluster_mode(c.node(1))
        c.wait_ready(deadline=120)
        make_topic(c, "rf1", 1, (1,))
        rf3_id, rf3_epoch = make_topic(c, "rf3", 1, (1, 2, 3))
        wide_id, wide_epoch = make_topic(c, "wide", 64, (1, 2, 3))
        leader = c.node(1).connect()
        leader.autocommit = True

        def report(end):
            for follower in (2, 3):
                leader.execute("SELECT * FROM streamlog._replica_progress(%s, ARRAY[%s], "
                               "ARRAY[0], ARRAY[%s], ARRAY[%s]::bigint[])",
                               (follower, rf3_id, rf3_epoch, end)).fetchall()

        log(f"a. {n} round trips each")
        results = {
            "acks=1, RF=1": round_trips(c, "rf1", 1, n),
            "acks=all, RF=1": round_trips(c, "rf1", -1, n),
            "acks=all, RF=3 (reports by the bench)": round_trips(c, "rf3", -1, n, report),
        }
        rows = [[what, f"{statistics.median(v) * 1e3:.2f}",
                 f"{sorted(v)[int(len(v) * 0.99) - 1] * 1e3:.2f}"]
                for what, v in results.items()]
        print(table(["produce of 1 record, one client", "p50 ms", "p99 ms"], rows))

        log(f"b. {calls} report calls each")
        rows = []
        for width in (1, 64):
            parts = list(range(width))
            t0 = time.perf_counter()
            for i in range(calls):
                leader.execute("SELECT * FROM streamlog._replica_progress(2, %s, %s, %s, %s)",
                               ([wide_id] * width, parts, [wide_epoch] * width,
                                [0] * width)).fetchall()
            secs = time.perf_counter() - t0
            rows.append([f"{width} partition(s) per call", f"{calls / secs:.0f}",
                         f"{calls * width / secs:.0f}"])
        print(table(["_replica_progress()", "calls/s", "partitions/s"], rows))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
