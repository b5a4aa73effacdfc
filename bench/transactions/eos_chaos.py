#!/usr/bin/python3
"""Exactly-once under crashes, for longer than CI runs it: the
consume-transform-produce loop of test/python/test_txn_faults.py
(confluent-kafka, eos_loop.py), its process killed with SIGKILL and the
server killed and restarted at random moments, for --minutes; then every
input record must have exactly one committed output record.

Figures, measured in the same run on the same server: input records the
loop turns into committed output per second with no fault (the peer), and
the same over the whole faulty run (every restart of the loop and of the
server included), with the count of faults and of loop instances.

    PG_CONFIG=/path/to/pg_config bench/transactions/eos_chaos.py [--minutes 10] [--seed N]

It starts a throw-away server with test/python/pgserver.py.  Exits 1 if the
check fails (the seed is in the message).
"""

import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))
from eos_chaos import EosChaos  # noqa: E402
from pgserver import PgServer  # noqa: E402

CONF = {"streamlog.transaction_coordinator": "on",
        "streamlog.retention_check_interval": "100ms"}


def steady(chaos, seconds):
    """Input records per second the loop commits with no fault."""
    chaos.ensure_client()
    chaos.wait_progress(chaos.committed())
    start, t0 = chaos.committed(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        if chaos.input_end() - chaos.committed() < 500:
            chaos.feed()
        time.sleep(0.2)
    return (chaos.committed() - start) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    ap.add_argument("--steady-seconds", type=float, default=30.0)
    args = ap.parse_args()

    base = tempfile.mkdtemp(prefix="eos-chaos-")
    srv = PgServer(base, conf=CONF, name="eoschaos")
    srv.start()
    chaos = EosChaos(srv, "eos", args.seed)
    try:
        chaos.setup()
        peer = steady(chaos, args.steady_seconds)
        t0, before = time.monotonic(), chaos.committed()
        rounds = chaos.run(deadline=t0 + args.minutes * 60)
        result = chaos.finish()
        faulty = (result["inputs"] - before) / (time.monotonic() - t0)
    except AssertionError as e:
        print(f"FAILED: {e}")
        print(f"server log: {srv.log_tail(40)}")
        return 1
    finally:
        chaos.cleanup()
        srv.cleanup()
    print(f"seed {args.seed}, {args.minutes:g} min of faults: {rounds} rounds {result['faults']}, "
          f"{result['instances']} loop instances")
    print(f"inputs {result['inputs']}, committed outputs {result['outputs']}: each exactly once")
    print("| run | input records/s committed |")
    print("|---|---|")
    print(f"| no fault (peer, {args.steady_seconds:g} s) | {peer:,.0f} |")
    print(f"| with faults (restarts included) | {faulty:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
