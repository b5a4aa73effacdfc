"""Partition data flowing from leader to followers by logical decoding
(CLUSTER.md section 3): streamlog's output plugin on the leader, an apply
worker per leader on each follower.  Three real nodes, RF=3 topics created
with a manual replica assignment; replicas are compared through SQL on
each node, batch bytes per offset."""

import os
import signal
import time

import pytest
from confluent_kafka import Producer

from replstream import (batch_epoch, create_topic_with_assignment, stored_batches,
                        wait_replicas_identical)

SLOT_OF = "streamlog_follower_{}"


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3)


def make_topic(cluster, name, replicas=(1, 2, 3), partitions=1):
    error, message = create_topic_with_assignment(
        cluster.node(1), name, {p: list(replicas) for p in range(partitions)})
    assert error == 0, message
    return cluster.wait_topic_everywhere(name)


def kafka_produce(node, topic, values, acks="all", partition=0):
    producer = Producer({"bootstrap.servers": node.kafka_bootstrap, "acks": acks,
                         "enable.idempotence": acks == "all", "linger.ms": 5})
    errors = []
    for v in values:
        producer.produce(topic, key=v, value=v, partition=partition,
                         on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None] * len(values), errors


def leader_of(cluster, topic, partition=0):
    return cluster.wait_for(lambda: cluster.leaders(topic).get(partition), 60,
                            f"a leader of {topic}")


def test_followers_hold_the_leaders_batches_byte_for_byte(cluster, unique_name):
    topic = unique_name("repl")
    make_topic(cluster, topic)
    leader = leader_of(cluster, topic)
    node = cluster.node(leader)
    kafka_produce(node, topic, [f"kafka-{i}".encode() for i in range(50)])
    with node.connect() as c:
        for i in range(10):
            c.execute("SELECT streamlog.produce(%s, %s, %s)", (topic, f"k{i}", f"sql-{i}"))
        with c.transaction():
            for i in range(5):
                c.execute("SELECT streamlog.produce(%s, 'tx', %s)", (topic, f"tx-{i}"))
    expected = stored_batches(node, topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                                   min_batches=len(expected))
    assert logs == expected
    epochs = {batch_epoch(b) for b in logs.values()}
    assert epochs == {cluster.partitions(topic)[0]["leader_epoch"]}


def wait_slot_inactive(node, slot, deadline=60):
    def inactive():
        rows = node.sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        return rows and not rows[0][0]
    end = time.monotonic() + deadline
    while not inactive():
        assert time.monotonic() < end, f"slot {slot} still active"
        time.sleep(0.2)


def test_follower_killed_catches_up_also_older_than_its_slot(cluster, unique_name):
    topic = unique_name("repl")
    make_topic(cluster, topic)
    leader = leader_of(cluster, topic)
    follower = [i for i in (1, 2, 3) if i != leader][0]
    node = cluster.node(leader)
    kafka_produce(node, topic, [f"before-{i}".encode() for i in range(20)])
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                            min_batches=len(stored_batches(node, topic)))

    cluster.kill9(follower)
    kafka_produce(node, topic, [f"while-down-{i}".encode() for i in range(20)], acks="1")
    # its slot goes while it is down: what it missed is older than the new one
    slot = SLOT_OF.format(follower)
    wait_slot_inactive(node, slot)
    node.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
    kafka_produce(node, topic, [f"after-drop-{i}".encode() for i in range(20)], acks="1")

    cluster.start(follower)
    expected = stored_batches(node, topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    assert logs == expected
    # and it keeps following through the new slot
    kafka_produce(node, topic, [f"after-restart-{i}".encode() for i in range(5)], acks="1")
    expected = stored_batches(node, topic)
    assert wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                                   min_batches=len(expected)) == expected


def test_replica_started_late_catches_up_the_history(make_cluster, unique_name):
    cluster = make_cluster(3)
    topic = unique_name("repl")
    # node 3 down: its replica is created with history it never streamed
    cluster.stop(3)
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: [1, 2, 3]})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic, node_ids=[1, 2])
    leader = leader_of(cluster, topic)
    kafka_produce(cluster.node(leader), topic, [f"h-{i}".encode() for i in range(30)],
                  acks="1")
    cluster.start(3)
    expected = stored_batches(cluster.node(leader), topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    assert logs == expected
    assert all(batch_epoch(b) >= 0 for b in logs.values())


def test_replica_catches_up_more_batches_than_a_partition_has_in_flight(make_cluster,
                                                                         unique_name):
    """Catch-up appends in transactions of a few batches: each holds one of
    the partition's 64 in-flight reservations until it commits, and one
    transaction of more would wait on itself forever."""
    cluster = make_cluster(3)
    topic = unique_name("repl")
    cluster.stop(3)
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: [1, 2, 3]})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic, node_ids=[1, 2])
    leader = leader_of(cluster, topic)
    with cluster.node(leader).connect() as c:
        for i in range(200):   # one batch each
            c.execute("SELECT streamlog.produce(%s, NULL, %s)", (topic, f"b-{i}"))
    expected = stored_batches(cluster.node(leader), topic)
    assert len(expected) >= 200
    cluster.start(3)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    assert logs == expected


def test_returning_old_leader_truncates_what_its_successor_never_had(cluster, unique_name):
    topic = unique_name("repl")
    make_topic(cluster, topic)
    old = leader_of(cluster, topic)
    others = [i for i in (1, 2, 3) if i != old]
    kafka_produce(cluster.node(old), topic, [f"acked-{i}".encode() for i in range(20)])
    before = wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                                     min_batches=len(stored_batches(cluster.node(old), topic)))

    # the leader's walsenders stopped where they stand: it takes writes
    # (acks=1) that no follower receives, then dies.  (Pausing the
    # followers instead would not do: the kernel still takes in what the
    # walsenders send, and the followers apply it once they run again.)
    senders = [r[0] for r in cluster.node(old).sql("SELECT pid FROM pg_stat_replication")]
    assert len(senders) == 2, senders
    for pid in senders:
        os.kill(pid, signal.SIGSTOP)
    kafka_produce(cluster.node(old), topic, [f"lost-{i}".encode() for i in range(10)],
                  acks="1")
    assert len(stored_batches(cluster.node(old), topic)) > len(before)
    # a stopped process sees no postmaster die: kill the senders first
    for pid in senders:
        os.kill(pid, signal.SIGKILL)
    cluster.kill9(old)

    # the controller elects a new leader among the in-sync others
    new = cluster.wait_for(
        lambda: (lambda l: l if l in others else None)(cluster.leaders(topic, via=others[0]).get(0)),
        120, f"a new leader of {topic} among {others}")
    kafka_produce(cluster.node(new), topic, [f"new-{i}".encode() for i in range(10)], acks="1")

    cluster.start(old)
    expected = stored_batches(cluster.node(new), topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected),
                                   deadline=120)
    assert logs == expected
    assert not any(b"lost-" in b for b in logs.values())
    # by leader-epoch truncation (KIP-279), not by a copy over its log
    assert f"truncated partition 0 of topic \"{topic}\"" in cluster.node(old).log_text()
    # what every replica held before the cut is still there, at the same offsets
    for base, data in before.items():
        assert logs[base] == data
    # the new leader's batches carry its newer epoch
    epochs = [batch_epoch(logs[b]) for b in sorted(logs)]
    assert epochs == sorted(epochs) and epochs[-1] > epochs[0]


def test_invalid_stream_message_stops_the_stream_and_is_never_applied(cluster, unique_name):
    """A batch whose bytes do not match their CRC, written into the leader's
    segment table behind storage's back (what a damaged or hostile stream
    would carry): each follower logs it, applies nothing of it, and keeps
    retrying from where it was."""
    topic = unique_name("repl")
    make_topic(cluster, topic)
    leader = leader_of(cluster, topic)
    node = cluster.node(leader)
    kafka_produce(node, topic, [f"good-{i}".encode() for i in range(5)])
    good = wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                                   min_batches=len(stored_batches(node, topic)))
    last = max(good)
    template = bytearray(good[last])
    end = last + int.from_bytes(template[23:27], "big") + 1
    template[0:8] = end.to_bytes(8, "big")
    template[-1] ^= 0xFF            # inside the CRC: the check must fail
    rel = node.sql("SELECT relid::regclass::text FROM streamlog.segment s "
                   "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s "
                   "ORDER BY seq DESC LIMIT 1", (topic,))[0][0]
    marks = {i: len(cluster.node(i).log_text()) for i in (1, 2, 3) if i != leader}
    node.sql(f"INSERT INTO {rel} (base_offset, last_offset, min_timestamp, max_timestamp, "
             f"append_time, record_count, producer_id, producer_epoch, base_sequence, "
             f"chunk, batch) VALUES (%s, %s, -1, -1, 0, 1, -1, -1, -1, 0, %s)",
             (end, end + int.from_bytes(template[23:27], "big"), bytes(template)))

    def refused_twice(i):
        text = cluster.node(i).log_text()[marks[i]:]
        return text.count("invalid message: record batch CRC mismatch") >= 2

    for i in marks:
        cluster.wait_for(lambda: refused_twice(i), 60,
                         f"node {i} refusing the damaged batch, then retrying", interval=0.5)
        assert stored_batches(cluster.node(i), topic) == good


def test_leader_transaction_of_more_batches_than_a_partition_has_in_flight(cluster, unique_name):
    """One leader transaction may store many batches in one partition (a
    SQL produce of many records, a group commit of many producers): the
    follower applies them in one transaction too, and must not take one of
    the partition's 64 in-flight reservations per batch, or it would wait on
    itself forever at the 65th."""
    topic = unique_name("repl")
    with cluster.node(1).connect() as c:
        c.execute("SELECT streamlog.create_topic(%s, 1, %s, 3)",
                  (topic, '{"max.message.bytes": "1024"}'))
    cluster.wait_topic_everywhere(topic)
    leader = leader_of(cluster, topic)
    with cluster.node(leader).connect() as c:
        # followed already, so that the big transaction comes by the stream
        c.execute("SELECT streamlog.produce(%s, NULL, 'first')", (topic,))
        wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=1)
        with c.transaction():
            for i in range(150):   # about one batch each: 700 B in a batch of at most 1 kB
                c.execute("SELECT streamlog.produce(%s, NULL, %s)", (topic, f"{i:03}" + "x" * 697))
    expected = stored_batches(cluster.node(leader), topic)
    assert len(expected) > 64
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    assert logs == expected
