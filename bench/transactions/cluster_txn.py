#!/usr/bin/env python3
"""Kafka transactions on a three-node cluster (README, "Transactions on a
cluster"), next to idempotent produce on the same cluster in the same run:
a topic of three partitions led by the three nodes (replication factor 3,
min.insync.replicas 2), librdkafka (confluent-kafka) with acks=all; each
measurement produces the same 100 B records round-robin over the three
partitions, from the first produce to the last acknowledgement
(idempotent) or the last commit_transaction() (transactional), so that
every transaction has markers on all three leaders, two of them other
nodes than the coordinator.  Commit latency is the time
commit_transaction() takes; with the next transaction's first
AddPartitionsToTxn, which waits for the markers (CONCURRENT_TRANSACTIONS
until the coordinator stored Complete), it is what a transaction costs
beyond its records.

    PG_CONFIG=... python3 bench/transactions/cluster_txn.py [--records N]

The cluster is made by the test harness (test/python/cluster.py) with the
installed streamlog of $PG_CONFIG, on loopback, and removed on exit.
Prints a table; no targets.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

from cluster import Cluster  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from replstream import create_topic_with_assignment  # noqa: E402

VALUE = b"x" * 100

CONF = {
    "streamlog.default_replication_factor": 3,
    "streamlog.min_insync_replicas": 2,
    "streamlog.transaction_state_topic_num_partitions": 3,
    "streamlog.offsets_topic_num_partitions": 3,
    "streamlog.transaction_coordinator": "on",
}


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def spread_topic(cluster, name):
    error, message = create_topic_with_assignment(
        cluster.node(1), name, {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]})
    assert error == 0, message
    cluster.wait_topic_everywhere(name)
    cluster.wait_for(lambda: cluster.leaders(name) == {0: 1, 1: 2, 2: 3}, 60,
                     f"{name} led by nodes 1, 2 and 3")
    return name


def produce_all(p, topic, n, start=0):
    for i in range(start, start + n):
        while True:
            try:
                p.produce(topic, VALUE, partition=i % 3)
                break
            except BufferError:
                p.poll(0.01)


def idempotent(cluster, records):
    topic = spread_topic(cluster, "bench_idempotent")
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5,
                  "queue.buffering.max.messages": 1000000})
    produce_all(p, topic, 3)
    p.flush(60)
    t0 = time.perf_counter()
    produce_all(p, topic, records)
    p.flush(300)
    return records / (time.perf_counter() - t0)


def transactional(cluster, records, per_txn):
    topic = spread_topic(cluster, f"bench_txn_{per_txn}")
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all",
                  "linger.ms": 5, "transactional.id": f"bench-{per_txn}",
                  "queue.buffering.max.messages": 1000000})
    p.init_transactions(60)
    p.begin_transaction()
    produce_all(p, topic, 3)
    p.commit_transaction(60)
    commits = []
    t0 = time.perf_counter()
    for t in range(records // per_txn):
        p.begin_transaction()
        produce_all(p, topic, per_txn, t * per_txn)
        c0 = time.perf_counter()
        p.commit_transaction(60)
        commits.append(time.perf_counter() - c0)
    return records / (time.perf_counter() - t0), commits


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=30000)
    args = ap.parse_args()
    base_dir = tempfile.mkdtemp(prefix="txn-cluster-bench-", dir=os.environ.get("BENCH_TMPDIR"))
    cluster = Cluster(3, base_dir, conf=CONF)
    try:
        cluster.start()
        cluster.wait_ready()
        base = idempotent(cluster, args.records)
        rows = [("idempotent, no transaction", base, 1.0, None, None)]
        for per_txn in (100, 1000):
            rate, commits = transactional(cluster, args.records, per_txn)
            rows.append((f"transactions of {per_txn:,}", rate, rate / base,
                         percentile(commits, 50) * 1000, percentile(commits, 99) * 1000))
    finally:
        cluster.cleanup()
    print(f"streamlog Kafka transactions on 3 nodes (RF 3, min.insync 2), "
          f"{args.records:,} records of 100 B over 3 partitions led by 3 nodes, acks=all")
    print(f"{'produce':<28} {'records/s':>10} {'vs idempotent':>14} {'commit p50 ms':>14} "
          f"{'commit p99 ms':>14}")
    for name, rate, ratio, p50, p99 in rows:
        print(f"{name:<28} {rate:>10,.0f} {ratio:>14.2f} "
              f"{'' if p50 is None else f'{p50:.1f}':>14} {'' if p99 is None else f'{p99:.1f}':>14}")


if __name__ == "__main__":
    main()
