"""Parked requests and connection memory in the broker workers, read off
the streamlog.broker_stats view (server-side counters, no timings).

A Fetch parked on one partition is looked at again when that partition
grows, and not for commits elsewhere; a connection's input buffer goes
back to a small size once a large request has been read, while the
connection stays open.
"""

import json

import pytest

import kafka_helpers as kh
import test_kafka_groups as kg
from pgserver import PgServer


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """A server with one broker worker: every parked request is its own."""
    srv = PgServer(tmp_path_factory.getbasetemp(),
                   conf={"streamlog.broker_workers": 1,
                         "streamlog.group_initial_rebalance_delay": 0},
                   name="parked")
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def create_topic(srv, name, partitions=1, config=None):
    srv.sql("SELECT streamlog.create_topic(%s, %s, %s::jsonb)",
            (name, partitions, json.dumps(config or {})))


def worker_stats(srv):
    rows = srv.sql("SELECT connections, input_buffer_bytes, parked_requests, "
                   "       parked_request_bytes, parked_attempts "
                   "  FROM streamlog.broker_stats")
    assert len(rows) == 1, rows
    return dict(zip(("connections", "input_buffer_bytes", "parked_requests",
                     "parked_request_bytes", "parked_attempts"), rows[0]))


def produce_sql(srv, topic, value="v"):
    srv.sql("SELECT streamlog.produce(%s, NULL, %s)", (topic, value))


def test_broker_stats_lists_each_worker(server):
    rows = server.sql("SELECT worker, pid FROM streamlog.broker_stats ORDER BY worker")
    assert sorted(pid for _, pid in rows) == kh.broker_pids(server)
    assert [w for w, _ in rows] == list(range(len(rows)))


def test_parked_fetch_not_looked_at_for_other_partitions(one_worker, unique_name):
    waited, busy = unique_name("parked-a"), unique_name("busy-b")
    create_topic(one_worker, waited)
    create_topic(one_worker, busy)
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=120.0) as c:
        # Long enough that only a wakeup can answer it within the test
        c.send(kh.fetch_request(1, waited, 0, 0, max_wait_ms=600_000))
        kh.wait_until(lambda: worker_stats(one_worker)["parked_requests"] == 1, 60,
                      "the Fetch to be parked")
        before = worker_stats(one_worker)["parked_attempts"]

        for i in range(100):
            produce_sql(one_worker, busy, f"b{i}")
        produce_sql(one_worker, waited, "a0")

        cid, body = c.recv_frame()
        assert cid == 1
        err, hw, records = kh.parse_fetch_v4(body)[(waited, 0)]
        assert (err, hw) == (kh.NONE, 1) and b"a0" in records

    # One look: the one for the commit to its own partition
    assert worker_stats(one_worker)["parked_attempts"] - before == 1


def test_parked_fetch_answers_when_its_partition_grows(one_worker, unique_name):
    topic = unique_name("parked-own")
    create_topic(one_worker, topic, partitions=2)
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=120.0) as c:
        c.send(kh.fetch_request(1, topic, 1, 0, max_wait_ms=600_000))
        kh.wait_until(lambda: worker_stats(one_worker)["parked_requests"] == 1, 60,
                      "the Fetch to be parked")
        one_worker.sql("SELECT streamlog.produce(%s, NULL, 'other', partition => 0)", (topic,))
        one_worker.sql("SELECT streamlog.produce(%s, NULL, 'mine', partition => 1)", (topic,))
        # Answered long before max_wait_ms: the commit woke it
        cid, body = c.recv_frame()
        err, hw, records = kh.parse_fetch_v4(body)[(topic, 1)]
        assert (cid, err, hw) == (1, kh.NONE, 1) and b"mine" in records
    assert worker_stats(one_worker)["parked_requests"] == 0


@pytest.mark.parametrize("case", ["unknown partition", "offset out of range",
                                  "unknown topic"])
def test_fetch_with_an_error_is_answered_at_once(one_worker, unique_name, case):
    """As Kafka does: a partition with an error to report is answered
    without waiting for max_wait_ms, never parked."""
    topic = unique_name("fetch-error")
    create_topic(one_worker, topic)
    partition, offset, expected = 0, 0, kh.NONE
    if case == "unknown partition":
        partition, expected = 7, kh.UNKNOWN_TOPIC_OR_PARTITION
    elif case == "offset out of range":
        offset, expected = 5, kh.OFFSET_OUT_OF_RANGE
    else:
        topic, expected = unique_name("no-such-topic"), kh.UNKNOWN_TOPIC_OR_PARTITION
    before = worker_stats(one_worker)["parked_attempts"]
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=60.0) as c:
        # ten minutes to wait: only an answer at once comes within the test
        body = c.call(kh.fetch_request, topic, partition, offset, max_wait_ms=600_000)
        assert kh.parse_fetch_v4(body)[(topic, partition)][0] == expected
    stats = worker_stats(one_worker)
    assert stats["parked_requests"] == 0
    assert stats["parked_attempts"] == before


def test_parked_fetch_memory_does_not_grow_with_looks(one_worker, unique_name):
    """Each look at a parked Fetch reads what the partition has; what a look
    read is given back at the next one, however many looks there are."""
    topic = unique_name("parked-memory")
    create_topic(one_worker, topic)
    one_worker.sql("SELECT streamlog.produce(%s, NULL, repeat('x', 200000)::bytea)", (topic,))
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=120.0) as c:
        # Waits for more than the partition will hold
        c.send(kh.fetch_request(1, topic, 0, 0, max_wait_ms=600_000, min_bytes=50_000_000))
        kh.wait_until(lambda: worker_stats(one_worker)["parked_requests"] == 1, 60,
                      "the Fetch to be parked")
        looks = worker_stats(one_worker)["parked_attempts"]
        for i in range(40):
            produce_sql(one_worker, topic, f"small{i}")
            looks += 1
            kh.wait_until(lambda: worker_stats(one_worker)["parked_attempts"] >= looks, 60,
                          f"look {i} at the parked Fetch")
        stats = worker_stats(one_worker)
        assert stats["parked_requests"] == 1
        # One look's worth (200 kB read, and the request), not 40
        assert stats["parked_request_bytes"] < 2 * 1024 * 1024, stats


def test_parked_join_looks_again_for_its_group_not_for_commits(one_worker, unique_name):
    """A JoinGroup waiting for the other members is woken by its group's
    transitions, not by records committed meanwhile."""
    topic, group = unique_name("group-topic"), unique_name("g")
    create_topic(one_worker, topic)
    boot = one_worker.kafka_bootstrap
    a, a_id = kg.raw_join(boot, group, [topic])
    with a:
        ja = kg.parse_join_group_v5(a.call(kg.join_group_v5, group, a_id, [topic]))
        sa = kg.parse_sync_group_v3(a.call(kg.sync_group_v3, group, ja["generation"], a_id,
                                           [(a_id, kg.consumer_assignment(topic, [0]))]))
        assert (ja["error"], sa["error"]) == (kh.NONE, kh.NONE)
        b, b_id = kg.raw_join(boot, group, [topic])
        with b:
            # B's join waits for A to join the new generation
            cid = b.next_correlation_id()
            b.send(kg.join_group_v5(cid, group, b_id, [topic], rebalance_ms=600_000))
            kh.wait_until(lambda: worker_stats(one_worker)["parked_requests"] == 1, 60,
                          "B's JoinGroup to be parked")
            before = worker_stats(one_worker)["parked_attempts"]
            for i in range(100):
                produce_sql(one_worker, topic, f"r{i}")
            ja = kg.parse_join_group_v5(a.call(kg.join_group_v5, group, a_id, [topic]))
            got, body = b.recv_frame()
            jb = kg.parse_join_group_v5(body)
            assert got == cid and ja["error"] == jb["error"] == kh.NONE
            assert ja["generation"] == jb["generation"]
    # Looked at for the group's transitions only, not once per commit as
    # when every commit woke every parked request
    assert worker_stats(one_worker)["parked_attempts"] - before <= 3


def test_input_buffer_shrinks_after_a_large_produce(one_worker, unique_name):
    topic = unique_name("large")
    size = 4 * 1024 * 1024
    create_topic(one_worker, topic, config={"max.message.bytes": str(2 * size)})
    batch = kh.record_batch([(None, b"x" * size, [], kh.now_ms())])
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=120.0) as c:
        body = c.call(kh.produce_v8_request, topic, 0, batch)
        assert kh.parse_produce_v8(body)[(topic, 0)][0] == kh.NONE

        # The connection stays open, holding no more than a small buffer
        kh.wait_until(lambda: worker_stats(one_worker)["connections"] == 1 and
                      worker_stats(one_worker)["input_buffer_bytes"] < 64 * 1024, 60,
                      "the input buffer to shrink, " + repr(worker_stats(one_worker)))
        body = c.call(kh.api_versions_request, 0)
        assert body[:2] == b"\x00\x00"
    [(offset, _ts, _key, value, _headers)] = kh.sql_records(one_worker, topic, 0)
    assert (offset, value) == (0, b"x" * size)


def test_frames_cut_anywhere_are_answered_in_order(one_worker):
    """Frames split at every byte boundary, some pipelined in one write, are
    each read whole (partly into the request itself) and answered in order."""
    frames = b"".join(kh.api_versions_request(cid, 0) for cid in range(1, 201))
    with kh.RawClient(one_worker.kafka_bootstrap, timeout=120.0) as c:
        pos = 0
        for step in (1, 2, 3, 5, 7, 11, 13):
            c.send(frames[pos:pos + step])
            pos += step
        c.send(frames[pos:])
        for cid in range(1, 201):
            got, body = c.recv_frame()
            assert (got, body[:2]) == (cid, b"\x00\x00")
