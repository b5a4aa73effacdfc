#!/usr/bin/env python3
"""What the first FindCoordinator of a cluster costs (README, "Replication
housekeeping"): on a fresh three-node loopback cluster, a FindCoordinator
for a group while __consumer_offsets does not exist yet.  Measured in one
run, per fresh cluster:

  first answer: COORDINATOR_NOT_AVAILABLE, the creation started in the
  background
  creation: from that request until a FindCoordinator names the
  coordinator (the topic exists on that node); a broker worker that
  created the topic itself, as before, held that request and every
  other connection it serves for this long
  ApiVersions on another connection to the same node meanwhile, next to
  the same request on an idle cluster (the peer)

Prints milliseconds (p50 / max of the ApiVersions round trips).

    PG_CONFIG=... python3 bench/replmaint/find_coordinator.py [--runs N]
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

import cluster_api_requests as car  # noqa: E402
import kafka_helpers as kh  # noqa: E402
from cluster import Cluster  # noqa: E402

API_VERSIONS = 18


def api_versions(cid):
    return kh.request_frame(API_VERSIONS, 0, cid, b"")


def round_trips(node, stop, out):
    with kh.RawClient(node.kafka_bootstrap, timeout=60) as client:
        while not stop.is_set():
            t = time.perf_counter()
            client.call(api_versions)
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.005)


def one_run(base, group):
    c = Cluster(3, base)
    try:
        c.start()
        c.wait_ready()
        c.wait_for_controller()
        node = c.node(2)
        idle = []
        stop = threading.Event()
        t = threading.Thread(target=round_trips, args=(node, stop, idle))
        t.start()
        time.sleep(1.0)
        stop.set()
        t.join()

        during = []
        stop = threading.Event()
        t = threading.Thread(target=round_trips, args=(node, stop, during))
        t.start()
        time.sleep(0.2)
        with kh.RawClient(node.kafka_bootstrap, timeout=120) as client:
            start = time.perf_counter()
            error, _, _, _ = car.parse_find_coordinator(
                client.call(car.find_coordinator_request, group))
            first = (time.perf_counter() - start) * 1000
            first_error = error
            while error != 0:
                time.sleep(0.01)
                error, _, _, _ = car.parse_find_coordinator(
                    client.call(car.find_coordinator_request, group))
            created = (time.perf_counter() - start) * 1000
        stop.set()
        t.join()
        return first, first_error, created, idle, during
    finally:
        c.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="streamlog-bench-fc-")
    rows = []
    try:
        for i in range(args.runs):
            rows.append(one_run(base, f"bench-group-{i}"))
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)
    print("run  first answer (error)  creation  ApiVersions idle p50/max  during p50/max")
    for i, (first, err, created, idle, during) in enumerate(rows):
        print(f"{i + 1:>3}  {first:8.1f} ms ({err:>2})  {created:7.0f} ms  "
              f"{statistics.median(idle):6.2f} / {max(idle):6.2f} ms    "
              f"{statistics.median(during):6.2f} / {max(during):6.2f} ms")
    print(f"median first answer {statistics.median(r[0] for r in rows):.1f} ms, "
          f"median creation {statistics.median(r[2] for r in rows):.0f} ms")


if __name__ == "__main__":
    main()
