"""The partition side of Kafka transactions (issue 14), through the SQL
test door until the coordinator opens the Kafka one: transactional
batches open a producer's transaction on a partition, markers close it,
the last stable offset (LSO) stops at the oldest open one, and aborted
transactions are indexed."""

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
