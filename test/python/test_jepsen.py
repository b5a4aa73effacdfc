"""A bounded Jepsen-style run on three nodes (CLUSTER.md section 5): acks=all
idempotent producers and consumers on every partition, a seeded schedule
of faults, heal, then every partition read back through SQL on every
replica and through Kafka, checked by jepsen_checker.check.

The seed is printed and named in the failure message;
STREAMLOG_JEPSEN_SEED=<seed> replays the schedule, STREAMLOG_JEPSEN_STEPS
sets its length (default 4 faults, a few minutes in all).  Until the
cluster replicates partitions the topic has replication factor 1 (a killed
leader's partitions are offline until it returns; nothing acknowledged may
be lost): STREAMLOG_JEPSEN_RF=3 asks for replicas.  The longer run for
release checks is bench/cluster/nemesis.py --minutes N.
"""

import os
import random

import pytest
from cluster import pause_method
from jepsen_checker import History, Nemesis, Workload, check

pytest.importorskip("confluent_kafka")

SESSION_TIMEOUT_MS = 3000


def test_jepsen_bounded_run(make_cluster, unique_name):
    seed = int(os.environ.get("STREAMLOG_JEPSEN_SEED", random.randrange(1 << 31)))
    steps = int(os.environ.get("STREAMLOG_JEPSEN_STEPS", "4"))
    rf = int(os.environ.get("STREAMLOG_JEPSEN_RF", "1"))
    message_timeout_ms = int(os.environ.get("STREAMLOG_JEPSEN_MESSAGE_TIMEOUT_MS", "300000"))
    print(f"jepsen seed {seed} (replay: STREAMLOG_JEPSEN_SEED={seed}), {steps} faults, "
          f"replication factor {rf}, pause by {pause_method()}")
    conf = {"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS}
    if rf > 1:
        conf["streamlog.min_insync_replicas"] = 2
    cluster = make_cluster(3, conf=conf)
    history = History()
    workload = Workload(cluster, history, unique_name("jepsen"), partitions=6,
                        replication_factor=rf, message_timeout_ms=message_timeout_ms)
    nemesis = Nemesis(cluster, workload, seed)
    schedule = nemesis.schedule(steps)
    print(f"schedule: {schedule}")
    workload.run(schedule, nemesis)
    result = check(history)
    print(result.report())
    print(f"client errors: {dict(history.info)}")
    print_client_events(history)
    assert result.valid, f"seed {seed}: {result.report()}\nfaults: {history.faults}"
    # the run did something: records were acknowledged across the faults
    assert result.stats["acked"] > 0 and result.stats["faults"] >= steps


def print_client_events(history, limit=40):
    """The producers' epoch bumps and the first errors brokers answered
    them, with the time: what a duplicate's copies are checked against."""
    for when, client, text in history.client_events[:limit]:
        print(f"{when:.3f} {client}: {text}")
    if len(history.client_events) > limit:
        print(f"... {len(history.client_events) - limit} more client events")
