#!/usr/bin/env python3
"""What an ISR change costs (README, "Replicas and the controller"): a
partition leader's AlterPartition, as its ISR manager makes it, measured
in one run on three loopback nodes through streamlog._alter_partition_isr:

  no change (the ISR it has): answered by the controller without a Raft
  entry (the peer: the round trip alone)
  a change, by a leader that is the controller (its local Raft slot)
  a change, by a leader that is not (forwarded over libpq)
  a reassignment started and cancelled (SQL reassign_partition)

Each change is answered once committed and applied to the asking node's
catalog; the changes alternate between dropping a follower from the ISR
and taking it back.  Prints p50 / p99 / mean in milliseconds.

    PG_CONFIG=... python3 bench/cluster_admin/alter_partition.py [--calls N]
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


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def partition_state(conn, topic):
    (leader, le, pe, replicas, isr), = conn.execute(
        "SELECT p.leader_id, p.leader_epoch, p.partition_epoch, p.replicas, p.isr "
        "FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id) "
        "WHERE t.name = %s AND p.partition = 0", (topic,)).fetchall()
    return leader, le, pe, replicas, isr


def timed_alters(node, topic, calls, change=True):
    """calls AlterPartitions by node, the partition's leader"""
    out = []
    with node.connect() as conn:
        leader, le, pe, replicas, isr = partition_state(conn, topic)
        assert leader == node.node_id, (leader, node.node_id)
        follower = next(r for r in replicas if r != leader)
        full = list(isr)
        for i in range(calls):
            want = full if not change or i % 2 == 1 else [r for r in full if r != follower]
            t = time.perf_counter()
            (code, message), = conn.execute(
                "SELECT * FROM streamlog._alter_partition_isr(%s, 0, %s, %s, %s)",
                (topic, le, pe, want)).fetchall()
            out.append((time.perf_counter() - t) * 1000)
            assert code == 0, (code, message)
            if change:
                pe += 1
    return out


def timed_reassignments(node, topic, target, calls):
    out = []
    with node.connect() as conn:
        for i in range(calls):
            t = time.perf_counter()
            conn.execute("SELECT streamlog.reassign_partition(%s, 0, %s)",
                         (topic, target if i % 2 == 0 else None))
            out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sl-alter-bench-")
    rows = []

    c = Cluster(4, base, voters=3, name="alter")
    try:
        c.start()
        c.wait_ready()
        controller = c.wait_for_controller()
        other, spare, fourth = [n for n in c.node_ids if n != controller]
        # one partition led by the controller, one by another node, three
        # replicas each: placed by a reassignment that the leader completes
        # (the new replicas hold nothing, but the bench needs no data), then
        # the first replica elected
        for topic, replicas in (("at_ctl", [controller, other, spare]),
                                ("at_fwd", [other, controller, spare])):
            c.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 1)", (topic,))
            c.node(1).sql("SELECT streamlog.reassign_partition(%s, 0, %s)", (topic, replicas))
            state = c.wait_topic_everywhere(topic)[4][0]
            if sorted(state[4]) != sorted(state[3]):
                c.node(state[0]).sql(
                    "SELECT * FROM streamlog._alter_partition_isr(%s, 0, %s, %s, %s)",
                    (topic, state[1], state[2], state[3]))
            c.wait_topic_everywhere(topic, check=lambda s, r=replicas: s[4][0][3] == r and
                                    sorted(s[4][0][4]) == sorted(r))
            c.node(1).sql("SELECT * FROM streamlog.elect_leaders(%s, 0)", (topic,))
            c.wait_topic_everywhere(topic, check=lambda s, r=replicas: s[4][0][0] == r[0])
        rows.append(("no change (peer: the round trip)",
                     timed_alters(c.node(other), "at_fwd", args.calls, change=False)))
        rows.append(("ISR change, leader is the controller",
                     timed_alters(c.node(controller), "at_ctl", args.calls)))
        rows.append(("ISR change, leader forwards",
                     timed_alters(c.node(other), "at_fwd", args.calls)))
        rows.append(("reassignment started / cancelled",
                     timed_reassignments(c.node(other), "at_fwd",
                                         [other, controller, spare, fourth], args.calls)))
    finally:
        c.cleanup()

    print(f"{args.calls} calls each, ms          p50      p99     mean")
    for name, values in rows:
        print(f"{name:<44} {pct(values, 0.5):7.2f} {pct(values, 0.99):8.2f} "
              f"{statistics.mean(values):8.2f}")


if __name__ == "__main__":
    main()
