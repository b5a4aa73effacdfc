#!/usr/bin/env python3
"""A longer Jepsen-style run for release checks: three streamlog nodes on
loopback (test/python/cluster.py), idempotent acks=all producers and
consumers on every partition, faults drawn from a seed for N minutes, then
heal, read back and check (test/python/jepsen_checker.py, the same code as
the bounded test test/python/test_jepsen.py).

    PG_CONFIG=... /usr/bin/python3 bench/cluster/nemesis.py --minutes 10
        [--seed S] [--partitions 6] [--replication-factor 3] [--rate 150]
        [--network-cuts] [--message-timeout-ms 300000]

--network-cuts places the nodes in network namespaces of their own
(test/python/jepsen_network.py, root needed) and adds cuts of a leader or
of the controller from the other nodes to the faults drawn; where
namespaces cannot be made it says why and runs without them.

Prints the seed first (--seed S replays the schedule), each fault as it is
played, the checker's report and the clients' errors; exits 1 if the
history has an anomaly, 2 if the run itself failed.  Servers live under
BENCH_TMPDIR (default /var/tmp) and are removed at the end
(STREAMLOG_KEEP_SERVERS=1 keeps them for a post-mortem).
"""

import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "python"))

from cluster import Cluster, pause_method  # noqa: E402
from jepsen_checker import History, Nemesis, Workload, check  # noqa: E402
from jepsen_network import NetworkCuts  # noqa: E402
from pgserver import unique_name  # noqa: E402

# Faults take ~10 s each on average (kill, a few seconds down, restart,
# a few seconds healthy): the schedule is drawn longer than needed and
# cut at the deadline
SECONDS_PER_FAULT = 8


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replication-factor", type=int, default=3)
    ap.add_argument("--network-cuts", action="store_true")
    ap.add_argument("--message-timeout-ms", type=int, default=300000,
                    help="the producers' message.timeout.ms (see Workload)")
    ap.add_argument("--rate", type=int, default=150,
                    help="records per second per producer (two producers)")
    ap.add_argument("--session-timeout-ms", type=int, default=3000)
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    print(f"nemesis seed {seed} (replay: --seed {seed}), {args.minutes} minutes, "
          f"{args.partitions} partitions, replication factor {args.replication_factor}, "
          f"pause by {pause_method()}", flush=True)
    base = tempfile.mkdtemp(prefix="streamlog-nemesis-",
                            dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    os.chmod(base, 0o755)
    conf = {"streamlog.broker_session_timeout_ms": args.session_timeout_ms}
    if args.replication_factor > 1:
        conf["streamlog.min_insync_replicas"] = 2
    cluster = Cluster(3, base, conf=conf, name="nemesis")
    network = None
    if args.network_cuts:
        why = NetworkCuts.unavailable()
        if why:
            print(f"network cuts skipped: {why}", flush=True)
        else:
            network = NetworkCuts()
    started = time.monotonic()
    try:
        if network is not None:
            network.place(cluster)
            print(f"nodes in network namespaces: "
                  f"{[network.address(n) for n in cluster.node_ids]}", flush=True)
        cluster.start()
        cluster.wait_ready()
        history = History()
        workload = Workload(cluster, history, unique_name("nemesis"),
                            partitions=args.partitions,
                            replication_factor=args.replication_factor, rate=args.rate,
                            message_timeout_ms=args.message_timeout_ms,
                            log=lambda m: print(m, flush=True))
        nemesis = Nemesis(cluster, workload, seed, log=lambda m: print(m, flush=True),
                          network=network)
        steps = max(1, int(args.minutes * 60 / SECONDS_PER_FAULT))
        schedule = nemesis.schedule(steps)
        until = time.monotonic() + args.minutes * 60
        workload.run(schedule, nemesis, until)
    except BaseException as e:
        print(f"the run failed (seed {seed}): {e!r}", flush=True)
        print(cluster.logs(30))
        cluster.cleanup()
        if network is not None:
            network.cleanup()
        return 2
    cluster.cleanup()
    if network is not None:
        network.cleanup()
    result = check(history)
    print(result.report())
    print(f"client errors: {dict(history.info)}")
    for when, client, text in history.client_events:
        if "epoch bump" in text:
            print(f"{when:.3f} {client}: {text}")
    print(f"faults played: {len(history.faults)}, "
          f"wall time {time.monotonic() - started:.0f} s, seed {seed}")
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
