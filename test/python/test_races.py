"""Kafka requests racing topic administration, and the lifecycle of the
extension: a Fetch or OffsetCommit that waits for a topic's lock while
another transaction alters, grows or drops the topic; clients fetching and
committing while topics change under them; shared state released by DROP
EXTENSION; created_at of topics made over Kafka."""

import threading
import time

import pytest

import kafka_helpers as kh
from kafka_helpers import array, i16, i32, i64, string, request_frame
from pgserver import wait_until

OFFSET_COMMIT = 8
TIMEOUT = 30


def offset_commit_request(correlation_id, group, topic, partition, offset):
    """OffsetCommit v2, a simple (generation -1) commit of one partition."""
    body = string(group) + i32(-1) + string("") + i64(-1)
    body += array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + i64(offset) + string(None)))
    return request_frame(OFFSET_COMMIT, 2, correlation_id, body)


def parse_offset_commit_v2(body):
    """{(topic, partition): error_code}"""
    r = kh.Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16())))):
        for p, err in parts:
            out[(topic, p)] = err
    return out


def broker_waits_for_lock(srv):
    """True once a broker worker waits for a lock (the topic's)."""
    return srv.sql(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE NOT l.granted AND a.backend_type = 'streamlog broker'")[0][0] > 0


def produce_one(srv, topic, partition, value):
    srv.sql("SELECT streamlog.produce_record(%s, NULL, %s, NULL, %s::int)",
            (topic, value, partition))


CHANGES = {
    "alter": "SELECT streamlog.alter_topic(%s, '{\"retention.ms\": \"3600000\"}')",
    "add_partitions": "SELECT streamlog.add_partitions(%s, 2)",
    "drop": "SELECT streamlog.drop_topic(%s)",
}


def hold_change(srv, sql, topic):
    """An open transaction that made a change to topic (and holds its
    AccessExclusiveLock); commit it to let waiters on."""
    c = srv.connect(autocommit=False)
    c.execute(sql, (topic,))
    return c


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_fetch_waiting_for_a_changing_topic(server, unique_name, change):
    """A Fetch that waits for the topic's lock while another transaction
    alters, grows or drops it answers for the topic as it is once the
    change committed: records, or UNKNOWN_TOPIC_OR_PARTITION."""
    topic = unique_name("race-fetch")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce_one(server, topic, 0, b"before")
    log_start = len(server.log_text())
    with kh.RawClient(server.kafka_bootstrap, timeout=TIMEOUT) as client:
        # Fill the worker's topic cache first
        body = client.call(kh.fetch_request, topic, 0, 0)
        assert kh.parse_fetch_v4(body)[(topic, 0)][0] == kh.NONE
        holder = hold_change(server, CHANGES[change], topic)
        try:
            cid = client.next_correlation_id()
            client.send(kh.fetch_request(cid, topic, 0, 0))
            wait_until(lambda: broker_waits_for_lock(server), TIMEOUT,
                       "the Fetch to wait for the topic's lock")
            holder.commit()
        finally:
            holder.close()
        got, body = client.recv_frame()
        assert got == cid
    err, hwm, records = kh.parse_fetch_v4(body)[(topic, 0)]
    if change == "drop":
        assert err == kh.UNKNOWN_TOPIC_OR_PARTITION
    else:
        assert err == kh.NONE
        assert hwm == 1
        assert b"before" in records
    assert "internal error" not in kh.log_since(server, log_start)
    kh.assert_server_healthy(server)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_offset_commit_waiting_for_a_changing_topic(server, unique_name, change):
    """An OffsetCommit that waits for the topic's lock while another
    transaction alters, grows or drops it stores the offset, or answers
    UNKNOWN_TOPIC_OR_PARTITION for a topic that is gone."""
    topic = unique_name("race-commit")
    group = unique_name("race-group")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    log_start = len(server.log_text())
    with kh.RawClient(server.kafka_bootstrap, timeout=TIMEOUT) as client:
        body = client.call(offset_commit_request, group, topic, 0, 0)
        assert parse_offset_commit_v2(body)[(topic, 0)] == kh.NONE
        holder = hold_change(server, CHANGES[change], topic)
        try:
            cid = client.next_correlation_id()
            client.send(offset_commit_request(cid, group, topic, 0, 1))
            wait_until(lambda: broker_waits_for_lock(server), TIMEOUT,
                       "the OffsetCommit to wait for the topic's lock")
            holder.commit()
        finally:
            holder.close()
        got, body = client.recv_frame()
        assert got == cid
    err = parse_offset_commit_v2(body)[(topic, 0)]
    if change == "drop":
        assert err == kh.UNKNOWN_TOPIC_OR_PARTITION
    else:
        assert err == kh.NONE
        assert server.sql(
            "SELECT committed_offset FROM streamlog.group_offset o "
            "JOIN streamlog.topic t USING (topic_id) "
            "WHERE o.group_id = %s AND t.name = %s", (group, topic)) == [(1,)]
    assert "internal error" not in kh.log_since(server, log_start)
    kh.assert_server_healthy(server)


def test_clients_fetch_and_commit_while_topics_change(make_server, unique_name):
    """Raw clients fetch and commit offsets, and a real consumer reads a
    topic, while another connection alters configs, adds partitions, and
    drops and creates topics again: every request gets a well-formed
    answer, no connection is closed, no process dies, and the consumer
    gets every record of the topic that stays."""
    from confluent_kafka import Consumer, TopicPartition

    srv = make_server(conf={"streamlog.max_partitions": 4096})
    postmaster = srv.pid
    brokers = kh.broker_pids(srv)
    stable = unique_name("stress-stable")
    churned = [unique_name(f"stress-churn{i}") for i in range(2)]
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (stable,))
    for t in churned:
        srv.sql("SELECT streamlog.create_topic(%s, 1)", (t,))
    log_start = len(srv.log_text())
    iterations = 25
    done = threading.Event()
    failures = []
    answered = [0]

    def client_loop(n):
        group = unique_name(f"stress-group{n}")
        allowed = {kh.NONE, kh.UNKNOWN_TOPIC_OR_PARTITION, kh.OFFSET_OUT_OF_RANGE}
        try:
            with kh.RawClient(srv.kafka_bootstrap, timeout=TIMEOUT) as client:
                while not done.is_set():
                    for t in [stable] + churned:
                        body = client.call(kh.fetch_request, t, n % 2, 0)
                        err = kh.parse_fetch_v4(body)[(t, n % 2)][0]
                        if err not in allowed:
                            failures.append(f"Fetch {t}: error {err}")
                        body = client.call(offset_commit_request, group, t, 0, 0)
                        err = parse_offset_commit_v2(body)[(t, 0)]
                        if err not in allowed:
                            failures.append(f"OffsetCommit {t}: error {err}")
                        answered[0] += 2
        except Exception as e:  # a closed connection or a garbled answer
            failures.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(3)]
    for th in threads:
        th.start()
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap,
                         "group.id": unique_name("stress-consumer"),
                         "enable.auto.commit": False,
                         "topic.metadata.refresh.interval.ms": 500})
    consumer.assign([TopicPartition(stable, 0, 0)])
    received = []
    admin = srv.connect()
    try:
        for i in range(iterations):
            admin.execute("SELECT streamlog.alter_topic(%s, jsonb_build_object("
                          "'retention.ms', %s::text))", (stable, 3600000 + i))
            admin.execute("SELECT streamlog.add_partitions(%s, 1)", (stable,))
            admin.execute("SELECT streamlog.produce_record(%s, NULL, %s, NULL, 0)",
                          (stable, f"r{i}".encode()))
            for t in churned:
                admin.execute("SELECT streamlog.drop_topic(%s)", (t,))
                admin.execute("SELECT streamlog.create_topic(%s, 2)", (t,))
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                received.append(msg.value())
        deadline = time.monotonic() + TIMEOUT
        while len(received) < iterations and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                received.append(msg.value())
    finally:
        done.set()
        for th in threads:
            th.join(TIMEOUT)
        consumer.close()
        admin.close()

    assert failures == []
    assert answered[0] > 0
    assert received == [f"r{i}".encode() for i in range(iterations)]
    assert srv.pid == postmaster and srv.is_running()
    assert kh.broker_pids(srv) == brokers
    log = kh.log_since(srv, log_start)
    assert "internal error" not in log
    kh.assert_server_healthy(srv)


def test_created_at_is_when_each_topic_was_created(make_server, unique_name):
    """Topics created over Kafka (CreateTopics, and auto-created by a
    produce) show when each was created, not when the broker started."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    srv = make_server(conf={"streamlog.auto_create_topics": True})

    def clock():
        return srv.sql("SELECT clock_timestamp()")[0][0]

    def created_at(topic):
        rows = srv.sql("SELECT created_at FROM streamlog.topics WHERE topic = %s", (topic,))
        return rows[0][0] if rows else None

    def wait_clock_past(t):
        return wait_until(lambda: (lambda now: now if now > t else None)(clock()),
                          TIMEOUT, f"the server's clock to pass {t}")

    # The broker has served a request before the window opens
    kh.assert_server_healthy(srv)
    window_start = clock()
    wait_clock_past(window_start)

    by_admin = unique_name("created-admin")
    admin = AdminClient({"bootstrap.servers": srv.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(by_admin, 1, 1)], operation_timeout=TIMEOUT)
    futures[by_admin].result(TIMEOUT)
    first = created_at(by_admin)
    wait_clock_past(first)

    auto = unique_name("created-auto")
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap})
    producer.produce(auto, b"v")
    assert producer.flush(TIMEOUT) == 0
    second = wait_until(lambda: created_at(auto), TIMEOUT, "the auto-created topic")
    window_end = clock()

    assert window_start < first < second <= window_end


def test_drop_extension_releases_partition_slots(make_server, unique_name):
    """The shared-memory slots of a dropped installation's partitions are
    released: drop and create the extension again and again, producing to
    every partition each time, on a server that has slots for only a few
    partitions."""
    srv = make_server(conf={"streamlog.max_partitions": 16})
    partitions = 16
    for cycle in range(4):
        if cycle > 0:
            srv.sql("CREATE EXTENSION streamlog")
        topic = unique_name(f"cycle{cycle}")
        srv.sql("SELECT streamlog.create_topic(%s, %s)", (topic, partitions))
        srv.sql("SELECT streamlog.produce(%s, NULL, 'v', partition => p) "
                "FROM generate_series(0, %s) p", (topic, partitions - 1))
        assert srv.sql("SELECT count(*) FROM streamlog.read(%s, %s)",
                       (topic, partitions - 1)) == [(1,)]
        srv.sql("DROP EXTENSION streamlog CASCADE")
    srv.sql("CREATE EXTENSION streamlog")
    kh.assert_server_healthy(srv)


def test_drop_extension_with_more_segments_than_locks(make_server, unique_name):
    """DROP EXTENSION streamlog CASCADE when its segment tables need more
    locks than the server has: a clear error that names the way out,
    streamlog.drop_all_topics(), which drops the topics a few per
    transaction; then DROP EXTENSION works."""
    from psycopg import errors

    srv = make_server(conf={"max_locks_per_transaction": 10, "max_connections": 10})
    topics = [unique_name(f"many{i}") for i in range(40)]
    for t in topics:
        srv.sql("SELECT streamlog.create_topic(%s, 10)", (t,))
    with pytest.raises(errors.OutOfMemory) as err:
        srv.sql("DROP EXTENSION streamlog CASCADE")
    assert "streamlog.drop_all_topics()" in (err.value.diag.message_hint or "")
    srv.sql("CALL streamlog.drop_all_topics()")
    assert srv.sql("SELECT count(*) FROM streamlog.topic") == [(0,)]
    srv.sql("DROP EXTENSION streamlog")
    srv.sql("CREATE EXTENSION streamlog")
    kh.assert_server_healthy(srv)
