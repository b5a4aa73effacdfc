"""Leader failovers of a replicated partition (CLUSTER.md P7-P9): what
was acknowledged with acks=all survives, and every replica ends with the
same batches byte for byte, by leader-epoch truncation (KIP-101/279)."""

import os
import signal

import pytest

from replstream import batch_epoch, create_topic_with_assignment, stored_batches, \
    wait_replicas_identical
from test_replication_stream import kafka_produce, leader_of

pytest.importorskip("confluent_kafka")

SESSION_TIMEOUT_MS = 3000


def stop_senders(node):
    """Freeze the leader's walsenders where they stand: it takes writes
    (acks=1) that no follower receives.  Returns their pids."""
    senders = [r[0] for r in node.sql("SELECT pid FROM pg_stat_replication")]
    assert senders, "no follower streams from this leader"
    for pid in senders:
        os.kill(pid, signal.SIGSTOP)
    return senders


def kill_with_senders(cluster, node_id, senders):
    # a stopped process sees no postmaster die: kill the senders first
    for pid in senders:
        os.kill(pid, signal.SIGKILL)
    cluster.kill9(node_id)


def new_leader(cluster, topic, among):
    return cluster.wait_for(
        lambda: (lambda l: l if l in among else None)(
            cluster.leaders(topic, via=among[0]).get(0)),
        120, f"a new leader of {topic} among {among}")


def test_two_quick_failovers_truncate_both_old_leaders(make_cluster, unique_name):
    """Kill the leader with a tail nobody has, then kill its successor
    right after it was elected, with a tail of its own epoch nobody has,
    and restart the first (the Raft quorum needs two of the three nodes):
    the third node leads.  Both return: each truncates where its epoch
    ended on the last leader (never to a high watermark), and all three
    replicas hold the same batches; nothing acknowledged is lost."""
    cluster = make_cluster(3, conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS,
                                    "streamlog.min_insync_replicas": 2})
    topic = unique_name("failover")
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: [1, 2, 3]})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic)
    first = leader_of(cluster, topic)
    acked = [f"acked-{i}".encode() for i in range(20)]
    kafka_produce(cluster.node(first), topic, acked)
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                            min_batches=len(stored_batches(cluster.node(first), topic)))

    # 1. the first leader takes writes nobody else gets, and dies
    senders = stop_senders(cluster.node(first))
    kafka_produce(cluster.node(first), topic, [f"lost-a-{i}".encode() for i in range(10)],
                  acks="1")
    kill_with_senders(cluster, first, senders)
    others = [i for i in (1, 2, 3) if i != first]
    second = new_leader(cluster, topic, others)
    third = next(i for i in others if i != second)

    # 2. its successor acknowledges (the third node has those), then takes
    # writes of its own epoch nobody else gets, and dies right away
    acked2 = [f"acked-b-{i}".encode() for i in range(10)]
    kafka_produce(cluster.node(second), topic, acked2)
    senders = stop_senders(cluster.node(second))
    kafka_produce(cluster.node(second), topic, [f"lost-b-{i}".encode() for i in range(10)],
                  acks="1")
    kill_with_senders(cluster, second, senders)
    # the first returns at once (two of three Raft voters make a quorum
    # again); out of the ISR, it cannot lead: the third does
    cluster.start(first)
    assert new_leader(cluster, topic, [third]) == third
    kafka_produce(cluster.node(third), topic, [f"c-{i}".encode() for i in range(10)])

    # 3. the second comes back too; both follow the third
    cluster.start(second)
    expected = stored_batches(cluster.node(third), topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected),
                                   deadline=180)
    assert logs == expected
    held = b"".join(logs.values())
    assert not any(b"lost-" in b for b in logs.values())
    for value in acked + acked2 + [f"c-{i}".encode() for i in range(10)]:
        assert value in held, f"acknowledged {value!r} lost"
    for node_id in (first, second):
        assert f"truncated partition 0 of topic \"{topic}\"" in \
            cluster.node(node_id).log_text(), f"node {node_id} did not truncate by epoch"
    epochs = [batch_epoch(logs[b]) for b in sorted(logs)]
    assert epochs == sorted(epochs), "a deposed leader's batch after its successor's"
