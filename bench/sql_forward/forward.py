#!/usr/bin/env python3
"""What SQL produce on a node that does not lead the partition costs
(README, "SQL produce on any node"), next to the same load on the leader,
in one run on a 3-node loopback cluster (test/python's Cluster):

  commit latency      one-record transactions in autocommit, one client:
                      produce on the leader (the peer) vs on another node
                      (the record goes to the local forward queue)
  delivery latency    on another node: from the start of the statement
                      until the leader's high watermark covers the record
                      (polled on a connection of its own)
  throughput          --clients clients each committing --calls one-record
                      transactions, until every record is on the leader:
                      records/s on the leader vs through another node

Topic: one partition, one replica, led by a node that is not the
controller.  Prints p50 / p99 / mean in ms and records/s.

    PG_CONFIG=... python3 bench/sql_forward/forward.py [--calls N] [--clients C]
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

from cluster import Cluster  # noqa: E402

PRODUCE = "SELECT streamlog.produce(%s, NULL, repeat('x', 100), partition => 0)"
HWM = "SELECT high_watermark FROM streamlog.partitions WHERE topic = %s AND partition = 0"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def commit_latencies(node, topic, calls):
    out = []
    with node.connect() as conn:
        for _ in range(calls):
            t = time.perf_counter()
            conn.execute(PRODUCE, (topic,))
            out.append((time.perf_counter() - t) * 1000)
    return out


def delivery_latencies(producer, leader, topic, calls):
    out = []
    with producer.connect() as pconn, leader.connect() as lconn:
        (hwm,), = lconn.execute(HWM, (topic,)).fetchall()
        for _ in range(calls):
            t = time.perf_counter()
            pconn.execute(PRODUCE, (topic,))
            hwm += 1
            while lconn.execute(HWM, (topic,)).fetchall()[0][0] < hwm:
                pass
            out.append((time.perf_counter() - t) * 1000)
    return out


def throughput(producer, leader, topic, clients, calls):
    with leader.connect() as conn:
        (start,), = conn.execute(HWM, (topic,)).fetchall()

    def run():
        with producer.connect() as c:
            for _ in range(calls):
                c.execute(PRODUCE, (topic,))

    t = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with leader.connect() as conn:
        while conn.execute(HWM, (topic,)).fetchall()[0][0] < start + clients * calls:
            time.sleep(0.001)
    return clients * calls / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sl-sqlfwd-bench-")
    rows = []
    c = Cluster(3, base, name="sqlfwdbench")
    try:
        c.start()
        c.wait_ready()
        controller = c.wait_for_controller()
        leader_id = next(n for n in c.node_ids if n != controller)
        other_id = next(n for n in c.node_ids if n not in (leader_id,))
        leader, other = c.node(leader_id), c.node(other_id)
        topic = "bench.forward"
        # one partition on the chosen node: create until the placement says so
        for i in range(20):
            name = f"{topic}.{i}"
            leader.sql("SELECT streamlog.create_topic(%s, 1)", (name,))
            c.wait_topic_everywhere(name)
            if c.leaders(name)[0] == leader_id:
                topic = name
                break
        else:
            raise SystemExit("the placement never put the partition on the chosen node")
        commit_latencies(other, topic, 20)          # warm up: producer id, plans
        delivery_latencies(other, leader, topic, 5)
        rows.append(("commit, on the leader (peer)", commit_latencies(leader, topic, args.calls)))
        rows.append(("commit, on another node (queued)",
                     commit_latencies(other, topic, args.calls)))
        rows.append(("delivered to the leader, from another node",
                     delivery_latencies(other, leader, topic, args.calls)))
        on_leader = throughput(leader, leader, topic, args.clients, args.calls)
        forwarded = throughput(other, leader, topic, args.clients, args.calls)
    finally:
        c.cleanup()

    print(f"{args.calls} one-record transactions each, ms        p50      p99     mean")
    for name, values in rows:
        print(f"{name:<48} {pct(values, 0.5):7.2f} {pct(values, 0.99):8.2f} "
              f"{statistics.mean(values):8.2f}")
    print(f"throughput, {args.clients} clients x {args.calls} transactions: "
          f"on the leader {on_leader:8.0f} records/s, through another node "
          f"{forwarded:8.0f} records/s ({forwarded / on_leader:.2f}x)")


if __name__ == "__main__":
    main()
