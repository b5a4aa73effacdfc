"""SQL consume() on any node of a cluster (README, "SQL consume() on any
node"): a node that does not coordinate the group claims and advances the
group's partitions on the coordinator, in a transaction tied to the
caller's by two-phase commit, and reads the records from its own replica.
Exactly once with the caller's transaction: a commit advances the group on
the coordinator, a rollback returns the same records again, consumers on
two nodes share the partitions, and kill -9 of the consuming node leaves
every record consumed exactly once after the in-doubt resolver ran.

Three real nodes, replication factor 3, min.insync.replicas 2."""

import threading
import time

import psycopg
import pytest

from test_cluster_groups import (CONF, coordinator_of, ensure_offsets_topic, produce)


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3, conf=CONF)


def create_topic(cluster, name, partitions):
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, %s, "
                        "'{\"min.insync.replicas\": \"2\"}', 3)", (name, partitions))
    return cluster.wait_topic_everywhere(
        name, check=lambda s: all(len(p[4]) == 3 for p in s[4].values()))


def produce_all(cluster, topic, partitions, per_partition):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    errors = []
    values = []
    for p in range(partitions):
        for i in range(per_partition):
            v = f"{topic}-{p}-{i}".encode()
            values.append(v)
            producer.produce(topic, value=v, partition=p,
                             on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None] * len(values), errors
    return values


def wait_replicated(cluster, topic, partitions, count, nodes):
    """Every node's copy has the records below its own high watermark"""
    def caught_up():
        for n in nodes:
            rows = cluster.node(n).sql(
                "SELECT partition, high_watermark FROM streamlog.partitions WHERE topic = %s",
                (topic,))
            if len(rows) != partitions or any(hw < count for _, hw in rows):
                return False
        return True
    cluster.wait_for(caught_up, 60, f"{topic} replicated on {nodes}")


def committed(node, group, topic):
    return dict(node.sql("SELECT partition, committed_offset FROM streamlog.consumer_lag "
                         "WHERE group_id = %s AND topic = %s", (group, topic)))


def prepare_topic(cluster, unique_name, partitions=2, per_partition=10):
    topic = unique_name("sqlc")
    group = unique_name("sqlcg")
    ensure_offsets_topic(cluster, group)
    create_topic(cluster, topic, partitions)
    values = produce_all(cluster, topic, partitions, per_partition)
    coordinator = coordinator_of(cluster, group)
    others = [i for i in cluster.node_ids if i != coordinator]
    wait_replicated(cluster, topic, partitions, per_partition, cluster.node_ids)
    return topic, group, values, coordinator, others


def consume(conn, group, topic, n):
    return conn.execute("SELECT partition, \"offset\", value FROM streamlog.consume(%s, %s, %s)",
                        (group, topic, n)).fetchall()


def test_consume_on_another_node_advances_the_group_on_its_coordinator(cluster, unique_name):
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name)
    node = cluster.node(others[0])
    with node.connect() as c:
        with c.transaction():
            rows = consume(c, group, topic, 100)
    assert sorted(bytes(v) for _, _, v in rows) == sorted(values)
    # the coordinator holds the advance once the caller committed
    assert committed(cluster.node(coordinator), group, topic) == {0: 10, 1: 10}
    # and nothing is left for anyone
    with node.connect() as c:
        with c.transaction():
            assert consume(c, group, topic, 100) == []
    with cluster.node(coordinator).connect() as c:
        with c.transaction():
            assert consume(c, group, topic, 100) == []


def test_rollback_on_another_node_returns_the_same_records(cluster, unique_name):
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name)
    node = cluster.node(others[0])
    with node.connect(autocommit=False) as c:
        first = consume(c, group, topic, 7)
        c.rollback()
        assert committed(cluster.node(coordinator), group, topic) in ({}, {0: 0, 1: 0},
                                                                         {0: 0}, {1: 0})
        again = consume(c, group, topic, 7)
        c.commit()
    assert len(first) == 7 and again == first
    got = {(p, o) for p, o, _ in again}
    after = committed(cluster.node(coordinator), group, topic)
    for p in (0, 1):
        assert after.get(p, 0) == len([1 for q, _ in got if q == p])


def test_two_nodes_share_a_group_exactly_once(cluster, unique_name):
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name)
    a = cluster.node(others[0]).connect(autocommit=False)
    b = cluster.node(others[1]).connect(autocommit=False)
    try:
        ra = consume(a, group, topic, 5)
        rb = consume(b, group, topic, 5)
        # while both transactions are open, they hold different partitions
        assert ra and rb
        assert {p for p, _, _ in ra}.isdisjoint({p for p, _, _ in rb})
        a.commit()
        b.commit()
        got = ra + rb
        deadline = time.monotonic() + 60
        while len(got) < len(values):
            assert time.monotonic() < deadline, got
            for c in (a, b):
                got += consume(c, group, topic, 3)
                c.commit()
    finally:
        a.close()
        b.close()
    assert sorted(bytes(v) for _, _, v in got) == sorted(values)


def consume_into_table(node, group, topic, n):
    """One consuming transaction: what it consumed goes into a local table"""
    with node.connect() as c:
        with c.transaction():
            rows = c.execute(
                "INSERT INTO consumed (value) "
                "SELECT value FROM streamlog.consume(%s, %s, %s) RETURNING value",
                (group, topic, n)).fetchall()
    return len(rows)


def test_kill9_of_the_consuming_node_consumes_each_record_once(cluster, unique_name):
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name, partitions=2,
                                                     per_partition=60)
    consumer_id = others[0]
    node = cluster.node(consumer_id)
    node.sql("CREATE TABLE consumed (value bytea)")
    stop = threading.Event()
    errors = []

    def stream():
        while not stop.is_set():
            try:
                consume_into_table(node, group, topic, 2)
            except psycopg.Error as e:
                errors.append(e)
                return

    t = threading.Thread(target=stream)
    t.start()
    cluster.wait_for(lambda: node.sql("SELECT count(*) FROM consumed")[0][0] >= 20, 60,
                     "some records consumed")
    cluster.kill9(consumer_id)
    stop.set()
    t.join(60)
    node.start()
    cluster.wait_ready()

    def all_consumed():
        try:
            consume_into_table(node, group, topic, 50)
        except psycopg.Error:
            return False
        return node.sql("SELECT count(*) FROM consumed")[0][0] >= len(values)
    cluster.wait_for(all_consumed, 120, "every record consumed after the restart",
                     interval=0.2)
    # a last look: nothing more, nothing twice
    consume_into_table(node, group, topic, 50)
    got = sorted(bytes(v) for (v,) in node.sql("SELECT value FROM consumed"))
    assert got == sorted(values)
    # the resolver left nothing prepared on any node
    cluster.wait_for(lambda: all(
        cluster.node(i).sql("SELECT count(*) FROM pg_prepared_xacts")[0][0] == 0
        for i in cluster.node_ids), 60, "no prepared transaction left")


def test_consume_without_prepared_transactions_on_the_coordinator_says_why(make_cluster,
                                                                          unique_name):
    conf = dict(CONF)
    conf["max_prepared_transactions"] = 0
    cluster = make_cluster(3, conf=conf)
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name, per_partition=2)
    with cluster.node(others[0]).connect() as c:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
            with c.transaction():
                consume(c, group, topic, 10)
    assert "max_prepared_transactions" in str(e.value)
    assert e.value.diag.message_hint


def test_sql_commit_on_the_coordinator_waits_for_replication(cluster, unique_name):
    """A SQL offset commit on the coordinator returns once the group's
    partition of __consumer_offsets holds it on the in-sync replicas (as
    Kafka's OffsetCommit): with both followers gone (and the metadata
    quorum with them, so the ISR cannot shrink) COMMIT returns at
    streamlog.offsets_commit_timeout_ms with a WARNING, the commit durable
    locally; with them back it returns without one."""
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name,
                                                              per_partition=3)
    node = cluster.node(coordinator)
    notices = []
    with node.connect() as c:
        c.add_notice_handler(lambda d: notices.append(d.message_primary))
        c.execute("SELECT streamlog.seek(%s, %s, 0, 1)", (group, topic))
        assert notices == []
        for i in others:
            cluster.kill9(i)
        c.execute("SET streamlog.offsets_commit_timeout_ms = 1000")
        c.execute("SELECT streamlog.seek(%s, %s, 0, 2)", (group, topic))
        assert any("not replicated" in (n or "") for n in notices), notices
    assert committed(node, group, topic)[0] == 2


def test_kill9_of_the_coordinator_consumes_each_record_once(cluster, unique_name):
    """A stream of consuming transactions on another node while the
    group's coordinator is killed and restarted: consume() fails while no
    coordinator answers, then carries on; every record lands in the output
    exactly once, or the resolver's WARNING names the window (README)."""
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name,
                                                              partitions=2, per_partition=60)
    node = cluster.node(others[0])
    node.sql("CREATE TABLE consumed (value bytea)")
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            try:
                consume_into_table(node, group, topic, 2)
            except psycopg.Error:
                time.sleep(0.1)

    t = threading.Thread(target=stream)
    t.start()
    try:
        cluster.wait_for(lambda: node.sql("SELECT count(*) FROM consumed")[0][0] >= 20, 60,
                         "some records consumed")
        cluster.kill9(coordinator)
        cluster.node(coordinator).start()
        cluster.wait_ready()
        cluster.wait_for(lambda: node.sql("SELECT count(*) FROM consumed")[0][0]
                         >= len(values), 180, "every record consumed", interval=0.2)
    finally:
        stop.set()
        t.join(60)
    got = sorted(bytes(v) for (v,) in node.sql("SELECT value FROM consumed"))
    assert got == sorted(values)


def test_rolled_back_savepoint_after_a_remote_consume_cannot_commit(cluster, unique_name):
    """The claim on the coordinator cannot be undone for a savepoint alone:
    COMMIT after rolling back a savepoint that consumed is refused, the
    whole transaction rolls back, and the records are there again."""
    topic, group, values, coordinator, others = prepare_topic(cluster, unique_name,
                                                              per_partition=3)
    node = cluster.node(others[0])
    with node.connect(autocommit=False) as c:
        c.execute("SAVEPOINT s")
        first = consume(c, group, topic, 4)
        c.execute("ROLLBACK TO SAVEPOINT s")
        with pytest.raises(psycopg.errors.InvalidTransactionState) as e:
            c.commit()
        assert e.value.diag.message_hint
    with node.connect() as c:
        with c.transaction():
            again = consume(c, group, topic, 4)
    assert len(first) == 4 and again == first


def test_consume_on_a_node_without_a_replica_reads_through_the_leader(cluster, unique_name):
    """A topic of replication factor 1: a node that holds no copy of the
    partition reads it through its leader (test_cluster_sql_remote_read.py
    has the rest)."""
    topic = unique_name("sqlc1")
    group = unique_name("sqlcg1")
    ensure_offsets_topic(cluster, group)
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, "
                        "'{\"min.insync.replicas\": \"1\"}', 1)", (topic,))
    cluster.wait_topic_everywhere(topic)
    leader = cluster.leaders(topic)[0]
    produce_all(cluster, topic, 1, 3)
    elsewhere = next(i for i in cluster.node_ids if i != leader)
    with cluster.node(elsewhere).connect() as c:
        with c.transaction():
            assert len(consume(c, group, topic, 10)) == 3
    # consumed once: nothing left on the node that holds it
    with cluster.node(leader).connect() as c:
        with c.transaction():
            assert consume(c, group, topic, 10) == []
