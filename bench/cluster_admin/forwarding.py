#!/usr/bin/env python3
"""What forwarding to the controller costs (README, "Cluster
administration"), measured in one run on loopback:

  create_topic(name, 1) on a standalone node            (the peer)
  create_topic through the controller itself             (local Raft slot)
  create_topic through a node that is not the controller (libpq forwarding)
  InitProducerId on a standalone node, and on a cluster node (ids from the
  controller's blocks of 1,000: one request in 1,000 fetches a block)

Each call is answered once the change is committed and applied to the
asking node's catalog.  Prints p50 / p99 / mean in milliseconds.

    PG_CONFIG=... python3 bench/cluster_admin/forwarding.py [--calls N]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))

import kafka_helpers as kh  # noqa: E402
from cluster import Cluster  # noqa: E402
from pgserver import PgServer  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def timed_creates(node, prefix, calls):
    out = []
    with node.connect() as conn:
        for i in range(calls):
            t = time.perf_counter()
            conn.execute("SELECT streamlog.create_topic(%s, 1)", (f"{prefix}-{i}",))
            out.append((time.perf_counter() - t) * 1000)
    return out


def timed_init_producer_ids(node, calls):
    out = []
    with kh.RawClient(node.kafka_bootstrap) as c:
        for _ in range(calls):
            t = time.perf_counter()
            error, _, _ = kh.parse_init_producer_id(c.call(kh.init_producer_id_request))
            out.append((time.perf_counter() - t) * 1000)
            assert error == 0, error
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sl-fwd-bench-")
    rows = []

    single = PgServer(base, name="fwd-single")
    try:
        single.start()
        rows.append(("create_topic, standalone (peer)", timed_creates(single, "s", args.calls)))
        rows.append(("InitProducerId, standalone", timed_init_producer_ids(single, args.calls)))
    finally:
        single.cleanup()

    c = Cluster(3, base, name="fwd")
    try:
        c.start()
        c.wait_ready()
        controller = c.wait_for_controller()
        other = next(n for n in c.node_ids if n != controller)
        rows.append(("create_topic, on the controller",
                     timed_creates(c.node(controller), "c", args.calls)))
        rows.append(("create_topic, forwarded from another node",
                     timed_creates(c.node(other), "f", args.calls)))
        rows.append(("InitProducerId, cluster node (blocks)",
                     timed_init_producer_ids(c.node(other), args.calls)))
    finally:
        c.cleanup()

    print(f"{args.calls} calls each, ms          p50      p99     mean")
    for name, values in rows:
        print(f"{name:<44} {pct(values, 0.5):7.2f} {pct(values, 0.99):8.2f} "
              f"{statistics.mean(values):8.2f}")


if __name__ == "__main__":
    main()
