"""Compaction and transactions (issue 14), as Kafka's cleaner: the batches
of aborted transactions go; a marker goes once no batch of its
transaction is left, in a pass after its delete horizon
(delete.retention.ms), like a tombstone; the aborted-transaction index
loses an entry once its batches are gone; nothing at or past the last
stable offset is touched.  With a real transactional producer
(confluent-kafka) on a compacted topic, read at both isolation levels
before and after each pass."""

import struct

import pytest

from compaction_model import CONF, clean, compacted_config, create_topic, wait_all_rolled
from replstream import stored_batches
from test_txn_clients import consume_all, producer

pytest.importorskip("confluent_kafka")

SERVER_CONF = dict(CONF, **{"streamlog.transaction_coordinator": "on",
                            "streamlog.log_cleaner_enable": False})


def varint(data, pos):
    """A zigzag varint of data at pos: (value, next pos)"""
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos


def batches(srv, topic):
    """[(base offset, kind, delete horizon set)] of the stored batches:
    kind is 'commit'/'abort' for markers, else the record count"""
    out = []
    for base, data in sorted(stored_batches(srv, topic).items()):
        attributes = struct.unpack_from(">h", data, 21)[0]
        count = struct.unpack_from(">i", data, 57)[0]
        kind = count
        if attributes & 0x20:
            # the control record: length, attributes, deltas, key length,
            # then its key: version and type (0 abort, 1 commit)
            _, pos = varint(data, 61)
            pos += 1
            _, pos = varint(data, pos)
            _, pos = varint(data, pos)
            _, pos = varint(data, pos)
            kind = {0: "abort", 1: "commit"}[struct.unpack_from(">h", data, pos + 2)[0]]
        out.append((base, kind, bool(attributes & 0x40)))
    return out


def read(conn, topic, isolation):
    return [r[0] for r in conn.execute(
        "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, 0, 0, 1000, "
        "isolation => %s)", (topic, isolation))]


def aborted_index(conn, topic):
    return conn.execute(
        "SELECT first_offset, last_offset FROM streamlog.txn_aborted a "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s ORDER BY 1",
        (topic,)).fetchall()


def txn(p, topic, records, commit):
    p.begin_transaction()
    for key, value in records:
        p.produce(topic, key=key.encode(), value=value.encode(), partition=0)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)


def test_cleaner_removes_aborted_batches_then_markers(make_server, unique_name):
    srv = make_server(conf=SERVER_CONF)
    conn = srv.connect()
    topic = unique_name("txcompact")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    p = producer(srv, unique_name("tid"))
    p.init_transactions(30)
    txn(p, topic, [("k1", "a1"), ("k2", "a2")], False)     # 0-1, ABORT 2
    txn(p, topic, [("k1", "c1"), ("k3", "c3")], True)      # 3-4, COMMIT 5
    txn(p, topic, [("k1", "c1b"), ("k3", "c3b")], True)    # 6-7, COMMIT 8
    assert batches(srv, topic) == [(0, 2, False), (2, "abort", False), (3, 2, False),
                                   (5, "commit", False), (6, 2, False), (8, "commit", False)]
    wait_all_rolled(conn, topic)
    assert aborted_index(conn, topic) == [(0, 2)]
    everything = ["a1", "a2", "c1", "c3", "c1b", "c3b"]
    assert read(conn, topic, "read_uncommitted") == everything
    assert read(conn, topic, "read_committed") == ["c1", "c3", "c1b", "c3b"]
    assert consume_all(srv, topic, "read_committed", 4) == ["c1", "c3", "c1b", "c3b"]

    # 1: the aborted batch goes whole, the committed one compacted away;
    # the markers stay, their transactions' batches met in this pass
    clean(conn, topic)
    assert batches(srv, topic) == [(2, "abort", False), (5, "commit", False),
                                   (6, 2, False), (8, "commit", False)]
    assert aborted_index(conn, topic) == [(0, 2)]
    for isolation in ("read_committed", "read_uncommitted"):
        assert read(conn, topic, isolation) == ["c1b", "c3b"]
        assert consume_all(srv, topic, isolation, 2) == ["c1b", "c3b"]

    # 2: no batch of theirs is left: both get a delete horizon, and the
    # aborted transaction leaves the index; the last marker holds the log
    # end and stays as it is
    clean(conn, topic)
    assert batches(srv, topic) == [(2, "abort", True), (5, "commit", True),
                                   (6, 2, False), (8, "commit", False)]
    assert aborted_index(conn, topic) == []
    # librdkafka reads past markers that carry a delete horizon
    for isolation in ("read_committed", "read_uncommitted"):
        assert consume_all(srv, topic, isolation, 2) == ["c1b", "c3b"]

    # 3: past the horizon (0 ms), they go
    clean(conn, topic)
    assert batches(srv, topic) == [(6, 2, False), (8, "commit", False)]
    for isolation in ("read_committed", "read_uncommitted"):
        assert read(conn, topic, isolation) == ["c1b", "c3b"]
        assert consume_all(srv, topic, isolation, 2) == ["c1b", "c3b"]
    # the producer goes on where it was
    txn(p, topic, [("k2", "c2")], True)
    assert consume_all(srv, topic, "read_committed", 3) == ["c1b", "c3b", "c2"]
    p.flush(10)


def test_cleaner_stops_at_an_open_transaction(make_server, unique_name):
    """An open transaction holds the LSO: its batches and everything after
    stay, aborted later or not; once aborted, the next passes remove it."""
    srv = make_server(conf=SERVER_CONF)
    conn = srv.connect()
    topic = unique_name("txcompact")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    p = producer(srv, unique_name("tid"))
    p.init_transactions(30)
    txn(p, topic, [("k1", "c1")], True)                   # 0, COMMIT 1
    p.begin_transaction()
    p.produce(topic, key=b"k1", value=b"open", partition=0)   # 2, open
    p.flush(30)
    other = producer(srv, unique_name("tid"))
    other.init_transactions(30)
    txn(other, topic, [("k1", "c1b")], True)              # 3, COMMIT 4
    wait_all_rolled(conn, topic)
    before = batches(srv, topic)
    clean(conn, topic)
    clean(conn, topic)
    after = batches(srv, topic)
    assert [b for b in after if b[0] >= 2] == [b for b in before if b[0] >= 2]
    assert read(conn, topic, "read_uncommitted") == ["c1", "open", "c1b"]
    assert read(conn, topic, "read_committed") == ["c1"]
    p.abort_transaction(30)                               # ABORT 5
    # the producer's last batch is then a committed one: the aborted one
    # is not kept (empty) for its sequence
    txn(p, topic, [("k2", "c2")], True)                   # 6, COMMIT 7
    wait_all_rolled(conn, topic)
    assert read(conn, topic, "read_committed") == ["c1", "c1b", "c2"]
    assert aborted_index(conn, topic) == [(2, 5)]
    for _ in range(3):
        clean(conn, topic)
    # c1 and its COMMIT go, the aborted batch and its ABORT go; c1b's
    # COMMIT stays with c1b, as Kafka keeps a marker while its batches do
    assert [b[:2] for b in batches(srv, topic)] == [(3, 1), (4, "commit"), (6, 1),
                                                    (7, "commit")]
    assert aborted_index(conn, topic) == []
    for isolation in ("read_committed", "read_uncommitted"):
        assert read(conn, topic, isolation) == ["c1b", "c2"]
        assert consume_all(srv, topic, isolation, 2) == ["c1b", "c2"]
