"""The partition side of Kafka transactions (issue 14), through the SQL
test door until the coordinator opens the Kafka one: transactional
batches open a producer's transaction on a partition, markers close it,
the last stable offset (LSO) stops at the oldest open one, and aborted
transactions are indexed."""

import time

import psycopg
import pytest


def append(conn, topic, partition, pid, epoch, seq, values):
    conn.execute("SELECT streamlog._txn_test_append(%s, %s, %s, %s::smallint, %s, %s)",
                 (topic, partition, pid, epoch, seq, values))


def marker(conn, topic, partition, pid, epoch, commit, coordinator_epoch=0):
    return conn.execute(
        "SELECT streamlog._txn_test_marker(%s, %s, %s, %s::smallint, %s, %s)",
        (topic, partition, pid, epoch, commit, coordinator_epoch)).fetchone()[0]


def lso(conn, topic, partition=0):
    return conn.execute("SELECT streamlog.last_stable_offset(%s, %s)",
                        (topic, partition)).fetchone()[0]


def hwm(conn, topic, partition=0):
    return conn.execute(
        "SELECT high_watermark FROM streamlog.partitions WHERE topic = %s AND partition = %s",
        (topic, partition)).fetchone()[0]


def aborted(conn, topic, partition=0):
    return conn.execute(
        "SELECT producer_id, first_offset, last_offset FROM streamlog.txn_aborted a "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND partition = %s "
        "ORDER BY first_offset", (topic, partition)).fetchall()


def produce(conn, topic, value, partition=0):
    conn.execute("SELECT streamlog.produce(%s, NULL, %s::text, partition => %s)",
                 (topic, value, partition))


def test_lso_stops_at_the_oldest_open_transaction(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, "plain")                        # offset 0
    assert lso(conn, topic) == hwm(conn, topic) == 1
    append(conn, topic, 0, 1000, 0, 0, ["a", "b"])        # 1, 2: opens 1000
    produce(conn, topic, "plain")                        # 3
    append(conn, topic, 0, 1001, 0, 0, ["c"])             # 4: opens 1001
    append(conn, topic, 0, 1000, 0, 2, ["d"])             # 5: 1000 still open
    assert hwm(conn, topic) == 6
    assert lso(conn, topic) == 1
    assert marker(conn, topic, 0, 1000, 0, True) == 6     # commit 1000
    assert lso(conn, topic) == 4                          # 1001 is still open
    assert marker(conn, topic, 0, 1001, 0, False) == 7    # abort 1001
    assert lso(conn, topic) == hwm(conn, topic) == 8
    assert aborted(conn, topic) == [(1001, 4, 7)]


def test_marker_without_open_transaction_is_written(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    assert marker(conn, topic, 0, 7, 3, False) == 0
    assert marker(conn, topic, 0, 7, 3, True) == 1
    assert lso(conn, topic) == hwm(conn, topic) == 2
    # An abort of nothing aborts nothing
    assert aborted(conn, topic) == []


def test_markers_from_a_replaced_coordinator_or_an_older_epoch_are_refused(
        conn, unique_name):
    """As Kafka's leader (TRANSACTION_COORDINATOR_FENCED,
    INVALID_PRODUCER_EPOCH): a late marker of a coordinator that was
    replaced (a lower coordinator epoch than the partition has seen) would
    end the producer's next transaction; one of an older producer epoch
    would end the transaction of its newer epoch.  Both are refused and the
    open transaction stays open; an operator's abort (coordinator epoch
    -1) is not fenced."""
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 5000, 0, 0, ["a"])             # 0
    assert marker(conn, topic, 0, 5000, 0, True, coordinator_epoch=3) == 1
    append(conn, topic, 0, 5000, 0, 1, ["b"])             # 2: the next transaction
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match="coordinator epoch 2 is older"):
        marker(conn, topic, 0, 5000, 0, False, coordinator_epoch=2)
    assert lso(conn, topic) == 2
    # the current coordinator commits it; then the producer moves on to
    # epoch 1 (InitProducerId) and opens a transaction there
    assert marker(conn, topic, 0, 5000, 0, True, coordinator_epoch=3) == 3
    append(conn, topic, 0, 5000, 1, 0, ["c"])             # 4
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match="producer 5000 epoch 0"):
        marker(conn, topic, 0, 5000, 0, False, coordinator_epoch=3)
    assert lso(conn, topic) == 4
    # the current coordinator ends it
    assert marker(conn, topic, 0, 5000, 1, False, coordinator_epoch=4) == 5
    assert lso(conn, topic) == hwm(conn, topic) == 6
    assert aborted(conn, topic) == [(5000, 4, 5)]
    # an operator's abort of a hanging transaction is never fenced
    append(conn, topic, 0, 5000, 1, 1, ["d"])             # 6
    assert marker(conn, topic, 0, 5000, 1, False, coordinator_epoch=-1) == 7
    # and leaves the fence where the newest coordinator put it
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        marker(conn, topic, 0, 5000, 1, True, coordinator_epoch=3)


def test_marker_rolled_back_with_its_transaction(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 5, 0, 0, ["x"])
    with pytest.raises(psycopg.errors.RaiseException):
        with conn.transaction():
            marker(conn, topic, 0, 5, 0, False)
            conn.execute("DO $$BEGIN RAISE 'no'; END$$")
    # The transaction is still open; the marker's offset is a hole
    assert lso(conn, topic) == 0
    assert aborted(conn, topic) == []
    off = marker(conn, topic, 0, 5, 0, True)
    assert off == 2
    assert lso(conn, topic) == hwm(conn, topic) == 3


def test_transactional_batches_are_sequence_checked(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 9, 0, 0, ["a"])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="out of order"):
        append(conn, topic, 0, 9, 0, 5, ["b"])
    # A marker takes no sequence: the producer's next batch goes on from 1
    marker(conn, topic, 0, 9, 0, True)
    append(conn, topic, 0, 9, 0, 1, ["b"])
    append(conn, topic, 0, 9, 0, 1, ["b"])               # a retry: stored once
    assert hwm(conn, topic) == 3


def test_test_door_is_superuser_only(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    role = unique_name("r")
    conn.execute(f'CREATE ROLE "{role}"')
    conn.execute("GRANT USAGE ON SCHEMA streamlog TO " + f'"{role}"')
    conn.execute("GRANT EXECUTE ON FUNCTION streamlog._txn_test_marker(text, integer, bigint, "
                 f'smallint, boolean, integer) TO "{role}"')
    try:
        with conn.transaction():
            conn.execute(f'SET LOCAL ROLE "{role}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="superuser"):
                marker(conn, topic, 0, 1, 0, True)
    finally:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_open_transaction_survives_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("txn")
    with srv.connect() as conn:
        conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
        produce(conn, topic, "before")
        append(conn, topic, 0, 42, 0, 0, ["open"])
        produce(conn, topic, "after")
        assert lso(conn, topic) == 1
    srv.kill9()
    srv.start()
    with srv.connect() as conn:
        assert hwm(conn, topic) == 3
        assert lso(conn, topic) == 1
        # The producer's sequence state is rebuilt: its next batch goes on
        append(conn, topic, 0, 42, 0, 1, ["more"])
        assert marker(conn, topic, 0, 42, 0, False) == 4
        assert lso(conn, topic) == 5
        assert aborted(conn, topic) == [(42, 1, 4)]
    srv.kill9()
    srv.start()
    with srv.connect() as conn:
        assert lso(conn, topic) == hwm(conn, topic) == 5
        assert aborted(conn, topic) == [(42, 1, 4)]


def test_drop_topic_removes_transaction_state(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 3, 0, 0, ["a"])
    append(conn, topic, 0, 4, 0, 0, ["b"])
    marker(conn, topic, 0, 4, 0, False)
    tid = conn.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                       (topic,)).fetchone()[0]
    conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))
    assert conn.execute("SELECT count(*) FROM streamlog.txn_open WHERE topic_id = %s",
                        (tid,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM streamlog.txn_aborted WHERE topic_id = %s",
                        (tid,)).fetchone()[0] == 0


def test_log_start_removes_aborted_transactions_below_it(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 1, 0, 0, ["a"])                # 0, aborted at 1
    marker(conn, topic, 0, 1, 0, False)
    append(conn, topic, 0, 2, 0, 0, ["b"])                # 2, aborted at 4
    append(conn, topic, 0, 3, 0, 0, ["c"])                # 3, open
    marker(conn, topic, 0, 2, 0, False)
    assert aborted(conn, topic) == [(1, 0, 1), (2, 2, 4)]
    # A transaction that ends at or past the log start stays indexed
    conn.execute("SELECT streamlog.delete_records(%s, 0, 4)", (topic,))
    assert aborted(conn, topic) == [(2, 2, 4)]
    conn.execute("SELECT streamlog.delete_records(%s, 0, 5)", (topic,))
    assert aborted(conn, topic) == []
    # Transaction 3 is still open, but its start is gone: readers wait at
    # the log start, not below it (Kafka's updateFirstUnstableOffset)
    assert lso(conn, topic) == hwm(conn, topic) == 5
    append(conn, topic, 0, 4, 0, 0, ["d"])                # 5, open
    assert lso(conn, topic) == 5


def values_read(conn, topic, isolation=None, from_offset=0):
    if isolation is None:
        rows = conn.execute("SELECT \"offset\", convert_from(value, 'UTF8') "
                            "FROM streamlog.read(%s, 0, %s)", (topic, from_offset))
    else:
        rows = conn.execute("SELECT \"offset\", convert_from(value, 'UTF8') "
                            "FROM streamlog.read(%s, 0, %s, isolation => %s)",
                            (topic, from_offset, isolation))
    return rows.fetchall()


def history(conn, topic, isolation="read_committed"):
    return conn.execute("SELECT \"offset\", convert_from(value, 'UTF8') "
                        "FROM streamlog.history(%s, isolation => %s)",
                        (topic, isolation)).fetchall()


def mixed_log(conn, topic):
    """0 plain; 1-2 txn A (aborted at 6); 3 txn B (committed at 5); 4 plain;
    5 COMMIT B; 6 ABORT A; 7 txn C (open); 8 plain."""
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, "p0")
    append(conn, topic, 0, 100, 0, 0, ["a1", "a2"])
    append(conn, topic, 0, 200, 0, 0, ["b1"])
    produce(conn, topic, "p4")
    assert marker(conn, topic, 0, 200, 0, True) == 5
    assert marker(conn, topic, 0, 100, 0, False) == 6
    append(conn, topic, 0, 300, 0, 0, ["c1"])
    produce(conn, topic, "p8")


def test_sql_readers_skip_markers_and_aborted_records(conn, unique_name):
    topic = unique_name("txn")
    mixed_log(conn, topic)
    assert lso(conn, topic) == 7 and hwm(conn, topic) == 9
    committed = [(0, "p0"), (3, "b1"), (4, "p4")]
    assert values_read(conn, topic) == committed
    assert values_read(conn, topic, "read_committed") == committed
    assert history(conn, topic) == committed
    # Aborted records are there for read_uncommitted, markers never are
    uncommitted = [(0, "p0"), (1, "a1"), (2, "a2"), (3, "b1"), (4, "p4"), (7, "c1"), (8, "p8")]
    assert values_read(conn, topic, "read_uncommitted") == uncommitted
    assert history(conn, topic, "read_uncommitted") == uncommitted
    # Starting inside the aborted transaction still skips the rest of it
    assert values_read(conn, topic, from_offset=2) == [(3, "b1"), (4, "p4")]
    # Once C commits, the reader goes on past it
    assert marker(conn, topic, 0, 300, 0, True) == 9
    assert values_read(conn, topic, from_offset=5) == [(7, "c1"), (8, "p8")]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="read_uncommitted"):
        values_read(conn, topic, "serializable")


def test_consume_stops_at_the_lso_and_lag_uses_it(conn, unique_name):
    topic = unique_name("txn")
    mixed_log(conn, topic)
    group = unique_name("g")

    def consume(isolation="read_committed"):
        return conn.execute("SELECT \"offset\", convert_from(value, 'UTF8') "
                            "FROM streamlog.consume(%s, %s, 100, isolation => %s)",
                            (group, topic, isolation)).fetchall()

    def lag():
        return conn.execute("SELECT committed_offset, high_watermark, last_stable_offset, lag "
                            "FROM streamlog.consumer_lag WHERE group_id = %s",
                            (group,)).fetchone()

    assert consume() == [(0, "p0"), (3, "b1"), (4, "p4")]
    # The group stops at the open transaction, not past it
    assert lag() == (7, 9, 7, 0)
    assert consume() == []
    assert marker(conn, topic, 0, 300, 0, False) == 9    # abort C
    assert lag() == (7, 10, 10, 3)
    assert consume() == [(8, "p8")]
    assert lag() == (10, 10, 10, 0)
    # read_uncommitted reads to the high watermark, aborted records included
    append(conn, topic, 0, 400, 0, 0, ["d1"])
    assert consume("read_uncommitted") == [(10, "d1")]


# -- the Kafka door: raw Fetch v4 and ListOffsets v2 frames --------------------------

import struct  # noqa: E402

import kafka_helpers as kh  # noqa: E402


def fetch_v4(cid, topic, partition, offset, isolation, max_wait_ms=0, min_bytes=1):
    body = (kh.i32(-1) + kh.i32(max_wait_ms) + kh.i32(min_bytes) + kh.i32(50 << 20)
            + kh.i8(isolation))
    body += kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: kh.i32(p) + kh.i64(offset) + kh.i32(10 << 20)))
    return kh.request_frame(kh.FETCH, 4, cid, body)


def parse_fetch_v4(body):
    """(error, high_watermark, last_stable_offset, aborted, batches) of the
    one partition; batches as (base_offset, last_offset, attributes, producer_id)"""
    r = kh.Reader(body)
    r.i32()
    [(_, [(_, err, hw, lso, aborted, records)])] = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16(), r.i64(), r.i64(),
                   r.array(lambda r: (r.i64(), r.i64())), r.bytes()))))
    batches = []
    records = records or b""
    pos = 0
    while pos + 61 <= len(records):
        base, length = struct.unpack(">qi", records[pos:pos + 12])
        attributes, last_delta = struct.unpack(">hi", records[pos + 21:pos + 27])
        pid = struct.unpack(">q", records[pos + 43:pos + 51])[0]
        batches.append((base, base + last_delta, attributes, pid))
        pos += 12 + length
    return err, hw, lso, aborted, batches


def list_offsets_v2(cid, topic, partition, timestamp, isolation):
    body = kh.i32(-1) + kh.i8(isolation) + kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: kh.i32(p) + kh.i64(timestamp)))
    return kh.request_frame(kh.LIST_OFFSETS, 2, cid, body)


def parse_list_offsets_v2(body):
    r = kh.Reader(body)
    r.i32()
    [(_, [(_, err, _ts, off)])] = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    return err, off


TXN = kh.BATCH_TRANSACTIONAL
CONTROL = kh.BATCH_CONTROL | kh.BATCH_TRANSACTIONAL


def test_fetch_read_committed_stops_at_lso_with_aborted_list(server, conn, unique_name):
    topic = unique_name("txn")
    mixed_log(conn, topic)
    with kh.RawClient(server.kafka_bootstrap) as c:
        err, hw, lso_, aborted_, batches = parse_fetch_v4(c.call(fetch_v4, topic, 0, 0, 1))
        assert (err, hw, lso_) == (0, 9, 7)
        # Every stored batch below the LSO, markers included, as stored
        assert [(b[0], b[1], b[2] & 0x30, b[3]) for b in batches] == [
            (0, 0, 0, -1), (1, 2, TXN, 100), (3, 3, TXN, 200), (4, 4, 0, -1),
            (5, 5, CONTROL, 200), (6, 6, CONTROL, 100)]
        assert aborted_ == [(100, 1)]
        # From past the aborted transaction: not in the list any more
        err, hw, lso_, aborted_, batches = parse_fetch_v4(c.call(fetch_v4, topic, 0, 7, 1))
        assert (err, lso_, aborted_, batches) == (0, 7, [], [])
        # read_uncommitted: to the high watermark, no aborted list, and
        # the real LSO, as Kafka reports it
        err, hw, lso_, aborted_, batches = parse_fetch_v4(c.call(fetch_v4, topic, 0, 0, 0))
        assert (err, hw, lso_, aborted_) == (0, 9, 7, [])
        assert [b[0] for b in batches] == [0, 1, 3, 4, 5, 6, 7, 8]
        # ListOffsets latest honours the isolation level
        assert parse_list_offsets_v2(c.call(list_offsets_v2, topic, 0, -1, 1)) == (0, 7)
        assert parse_list_offsets_v2(c.call(list_offsets_v2, topic, 0, -1, 0)) == (0, 9)
        # A record found by its timestamp lies below the LSO for read_committed
        assert parse_list_offsets_v2(c.call(list_offsets_v2, topic, 0, 0, 1)) == (0, 0)
        # Once C commits, the LSO moves to the high watermark
        assert marker(conn, topic, 0, 300, 0, True) == 9
        err, hw, lso_, aborted_, batches = parse_fetch_v4(c.call(fetch_v4, topic, 0, 7, 1))
        assert (err, hw, lso_, aborted_) == (0, 10, 10, [])
        assert [b[0] for b in batches] == [7, 8, 9]
        assert parse_list_offsets_v2(c.call(list_offsets_v2, topic, 0, -1, 1)) == (0, 10)


def test_parked_read_committed_fetch_wakes_on_the_marker(server, conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 77, 0, 0, ["open"])
    with kh.RawClient(server.kafka_bootstrap, timeout=60) as c:
        cid = c.next_correlation_id()
        # Parked: nothing below the LSO (0) though the high watermark is 1
        c.send(fetch_v4(cid, topic, 0, 0, 1, max_wait_ms=30000))
        kh.wait_until(lambda: conn.execute(
            "SELECT sum(parked_requests) FROM streamlog.broker_stats").fetchone()[0] == 1,
            60, "the fetch to park")
        marker(conn, topic, 0, 77, 0, True)
        got, body = c.recv_frame()
        assert got == cid
        err, hw, lso_, aborted_, batches = parse_fetch_v4(body)
        assert (err, hw, lso_) == (0, 2, 2)
        assert [b[0] for b in batches] == [0, 1]


def test_compaction_stops_at_the_lso_and_keeps_aborted_records_out_of_the_map(
        make_server, unique_name):
    from psycopg.types.json import Jsonb
    from test_compaction import CONF, produce_segment, rolled
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1, %s)",
                 (topic, Jsonb({"cleanup.policy": "compact", "segment.ms": 1})))

    def txn(pid, keys, values):
        conn.execute("SELECT streamlog._txn_test_append(%s, 0, %s, 0::smallint, 0, %s, %s)",
                     (topic, pid, values, keys))

    def kv(isolation):
        return [(o, bytes(k).decode(), bytes(v).decode()) for o, k, v in conn.execute(
            "SELECT \"offset\", key, value FROM streamlog.read(%s, 0, isolation => %s)",
            (topic, isolation)).fetchall()]

    produce_segment(conn, topic, [("k", "v1")])           # 0
    txn(10, ["k"], ["aborted"])                           # 1
    marker(conn, topic, 0, 10, 0, False)                  # 2
    produce_segment(conn, topic, [("x", "x1")])           # 3, then a roll
    txn(11, ["k"], ["open"])                              # 4, open
    produce_segment(conn, topic, [("k", "v2")])           # 5, then a roll
    assert rolled(conn, topic)
    assert lso(conn, topic) == 4
    partition, cleaned_offset, _removed, _ = conn.execute(
        "SELECT * FROM streamlog.clean(%s)", (topic,)).fetchone()
    # Not past the open transaction: its record at 4 is still there
    assert cleaned_offset == 4
    assert (4, "k", "open") in kv("read_uncommitted")
    # The aborted record did not count as k's last: v1 stays for readers
    assert kv("read_committed") == [(0, "k", "v1"), (3, "x", "x1")]
    marker(conn, topic, 0, 11, 0, True)                   # 6
    produce_segment(conn, topic, [("y", "y1")])           # 7, then a roll
    conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert kv("read_committed") == [(3, "x", "x1"), (5, "k", "v2"), (7, "y", "y1")]


def test_kafka_read_committed_consumer_skips_aborted_and_stalls_at_open(
        server, conn, unique_name):
    """librdkafka's read_committed consumer filters with the aborted list
    and stops at the LSO; its read_uncommitted one reads everything but
    markers"""
    from confluent_kafka import Consumer, TopicPartition

    topic = unique_name("txn")
    mixed_log(conn, topic)          # LSO 7 (transaction C open at 7), HWM 9

    def consumer(isolation):
        c = Consumer({"bootstrap.servers": server.kafka_bootstrap, "group.id": unique_name("g"),
                      "enable.auto.commit": False, "isolation.level": isolation})
        c.assign([TopicPartition(topic, 0, 0)])
        return c

    def take(c, got, until):
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline:
            for m in c.consume(10, timeout=0.2):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value().decode()))

    committed, uncommitted = consumer("read_committed"), consumer("read_uncommitted")
    try:
        seen_c, seen_u = [], []
        take(uncommitted, seen_u, lambda: len(seen_u) >= 7)
        assert seen_u == [(0, "p0"), (1, "a1"), (2, "a2"), (3, "b1"), (4, "p4"),
                          (7, "c1"), (8, "p8")]
        take(committed, seen_c, lambda: len(seen_c) >= 3)
        # Below the open transaction only, and no aborted record
        assert seen_c == [(0, "p0"), (3, "b1"), (4, "p4")]
        assert marker(conn, topic, 0, 300, 0, True) == 9
        take(committed, seen_c, lambda: len(seen_c) >= 5)
        assert seen_c == [(0, "p0"), (3, "b1"), (4, "p4"), (7, "c1"), (8, "p8")]
    finally:
        committed.close()
        uncommitted.close()


def test_abort_a_hanging_transaction(conn, unique_name):
    topic = unique_name("txn")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, "p0")
    append(conn, topic, 0, 500, 3, 0, ["h1", "h2"])          # 1-2, hanging
    produce(conn, topic, "p3")
    assert conn.execute("SELECT partition, producer_id, producer_epoch, first_offset "
                        "FROM streamlog.open_transactions WHERE topic = %s",
                        (topic,)).fetchall() == [(0, 500, 3, 1)]
    assert values_read(conn, topic) == [(0, "p0")]
    with pytest.raises(psycopg.errors.UndefinedObject, match="open_transactions"):
        conn.execute("SELECT streamlog.abort_transaction(%s, 0, 2)", (topic,))
    role = unique_name("r")
    conn.execute(f'CREATE ROLE "{role}"')
    try:
        with conn.transaction():
            conn.execute(f'SET LOCAL ROLE "{role}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT streamlog.abort_transaction(%s, 0, 1)", (topic,))
    finally:
        conn.execute(f'DROP ROLE "{role}"')
    assert conn.execute("SELECT streamlog.abort_transaction(%s, 0, 1)",
                        (topic,)).fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM streamlog.open_transactions WHERE topic = %s",
                        (topic,)).fetchone()[0] == 0
    assert aborted(conn, topic) == [(500, 1, 4)]
    assert values_read(conn, topic) == [(0, "p0"), (3, "p3")]
