"""Replication stream benchmark: three streamlog nodes on loopback (the
multi-node test harness, test/python/cluster.py), one partition with three
replicas next to one with a single replica, on the same cluster, in the
same run.

  a. produce throughput with acks=all (idempotent, confluent-kafka, 100 B
     values) to RF=3 next to RF=1: the RF=3 acknowledgement waits for
     both followers' apply workers to report the batch durable
  b. whether, when the produce returned, both followers already held every
     batch the leader had, byte for byte (acks=all promises it)

    PG_CONFIG=... /usr/bin/python3 bench/replstream/stream_bench.py [--records N]
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "python"))

from confluent_kafka import Producer  # noqa: E402

import cluster as cl  # noqa: E402
from replstream import create_topic_with_assignment, stored_batches  # noqa: E402


def produce(node, topic, n, size):
    producer = Producer({"bootstrap.servers": node.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "batch.num.messages": 1000})
    producer.list_topics(topic, timeout=10)
    value = b"x" * size
    errors = []
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value, partition=0,
                                 on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(120) == 0
    elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    c = cl.Cluster(3, name="rbench")
    try:
        c.start()
        cl.require_cluster_mode(c.node(1))
        c.wait_ready(deadline=120)
        topics = {}
        for name, replicas in (("rf1", [1]), ("rf3", [1, 2, 3])):
            topic = f"bench-{name}-{os.getpid()}"
            err, msg = create_topic_with_assignment(c.node(1), topic, {0: replicas})
            assert err == 0, msg
            c.wait_topic_everywhere(topic)
            leader = c.wait_for(lambda: c.leaders(topic).get(0), 60, "a leader")
            # warm-up: the apply workers' first sync
            produce(c.node(leader), topic, 100, args.size)
            topics[name] = (topic, leader, replicas)
        rates = {"rf1": [], "rf3": []}
        held = True
        for _ in range(args.rounds):
            for name in ("rf3", "rf1"):
                topic, leader, replicas = topics[name]
                rates[name].append(args.records / produce(c.node(leader), topic,
                                                          args.records, args.size))
                # acks=all: every replica held what was acknowledged, at once
                expected = stored_batches(c.node(leader), topic)
                for i in replicas:
                    if i != leader:
                        got = stored_batches(c.node(i), topic)
                        held &= all(got.get(b) == d for b, d in expected.items())
        print(f"{'topic':<6} {'records/s (median of %d)' % args.rounds:>26} {'MB/s':>8}")
        for name in ("rf1", "rf3"):
            rate = statistics.median(rates[name])
            print(f"{name:<6} {rate:>26,.0f} {rate * args.size / 1e6:>8.2f}")
        print(f"rf3 / rf1 throughput: {statistics.median(rates['rf3']) / statistics.median(rates['rf1']):.2f}x "
              f"({args.records} records of {args.size} B per round, acks=all, idempotent)")
        print(f"followers held every acknowledged batch when the produce returned: {held}")
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
