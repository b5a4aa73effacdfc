"""An ERROR inside a request is answered with a Kafka error code and
fails only that request: the connection stays open, the other requests of
a produce group commit, and the broker worker keeps running.

The ERROR is a real one: a SQL session holds the topic's lock
(delete_records takes it in AccessExclusive mode until commit) and the
server runs with a short lock_timeout, so the broker's wait for the lock
fails with lock_not_available.
"""

import os
import signal

import pytest

import kafka_helpers as kh
from pgserver import wait_until

REQUEST_TIMED_OUT = 7


@pytest.fixture
def locking_server(make_server):
    return make_server(conf={"lock_timeout": "200ms"})


def hold_topic_lock(srv, topic):
    """A SQL session in a transaction holding topic's lock; roll it back
    to release."""
    conn = srv.connect(autocommit=False)
    conn.execute("SELECT streamlog.delete_records(%s, 0, 0)", (topic,))
    return conn


def list_offsets(client, topic):
    return kh.parse_list_offsets_v1(client.call(kh.list_offsets_request, topic, 0, -1))


def test_failing_request_is_answered_and_keeps_the_connection(locking_server, unique_name):
    srv = locking_server
    topic = unique_name("locked")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    pids = kh.broker_pids(srv)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert list_offsets(c, topic)[(topic, 0)][0] == kh.NONE
        log_offset = len(srv.log_text())
        holder = hold_topic_lock(srv, topic)
        try:
            # The lock wait fails: a retriable error for the partition
            assert list_offsets(c, topic)[(topic, 0)][0] == REQUEST_TIMED_OUT
        finally:
            holder.rollback()
            holder.close()
        # The same connection answers the next request
        assert list_offsets(c, topic)[(topic, 0)] == (kh.NONE, -1, 0)
        client_address = c.local_address
    line = kh.wait_log(srv, log_offset, r"request failed, answered with REQUEST_TIMED_OUT")
    assert "lock timeout" in line
    # The log names the client, its id and the API
    kh.wait_log(srv, log_offset,
                rf'CONTEXT:  Kafka ListOffsets v1 request from {client_address} \(client "raw-test"\)')
    assert kh.broker_pids(srv) == pids


def test_failing_produce_does_not_fail_its_group(locking_server, unique_name):
    srv = locking_server
    locked, free = unique_name("locked"), unique_name("free")
    for t in (locked, free):
        srv.sql("SELECT streamlog.create_topic(%s, 1)", (t,))
    batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
    with kh.RawClient(srv.kafka_bootstrap) as c:
        holder = hold_topic_lock(srv, locked)
        try:
            # Pipelined in one write: read in the same loop iteration, one group
            c.send(kh.produce_request(1, locked, [(0, batch)]) +
                   kh.produce_request(2, free, [(0, batch)]))
            cid_a, body_a = c.recv_frame()
            cid_b, body_b = c.recv_frame()
        finally:
            holder.rollback()
            holder.close()
        assert (cid_a, cid_b) == (1, 2)
        assert kh.parse_produce_v3(body_a)[(locked, 0)] == (REQUEST_TIMED_OUT, -1)
        assert kh.parse_produce_v3(body_b)[(free, 0)] == (kh.NONE, 0)
    assert kh.high_watermark(srv, free) == 1
    assert kh.high_watermark(srv, locked) == 0


def test_error_between_requests_keeps_the_worker(server):
    """A query cancel reaches the worker between requests (an ERROR outside
    any request): it is reported and the worker goes on serving, with its
    open connections."""
    pids = kh.broker_pids(server)
    log_offset = len(server.log_text())
    with kh.RawClient(server.kafka_bootstrap) as c:
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        kh.wait_log(server, log_offset, r"canceling statement due to user request")
        # The same connection is still served by the same worker
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
    wait_until(lambda: kh.broker_pids(server) == pids, 5, "the broker workers")
    kh.assert_server_healthy(server)
