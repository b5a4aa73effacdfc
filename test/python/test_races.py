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
