"""Hostile requests to the transaction APIs (issue 14), through raw frames:
lists whose counts come from the wire, naming the same partition, id or
filter over and over.  Each is answered item by item with Kafka's codes
and the connection stays open; the work is bounded by what exists (each
partition or id read once, filters read once), not by the counts sent."""

import pytest

import kafka_helpers as kh
from kafka_helpers import array, i8, i16, i32, i64, string, uvarint
from pgserver import PgServer
from test_txn_admin import (DESCRIBE_PRODUCERS, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS,
                            TRANSACTIONAL_ID_NOT_FOUND, carray, cstring, r_carray, r_cstring,
                            r_tags)
from test_txn_coordinator import (ADD_PARTITIONS_TO_TXN, CONF, NONE, Txn, create_topic,
                                  group_offsets, state, txn_append)

CLUSTER_AUTHORIZATION_FAILED = 31
WRITE_TXN_MARKERS = 27
TXN_OFFSET_COMMIT = 28
BIG = 200_000          # items in one request: a few MB


@pytest.fixture(scope="module")
def txn_server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), conf=CONF, name="txhostile")
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def still_open(client):
    """The connection answers an ApiVersions after the hostile request."""
    error, _ = kh.parse_api_versions(client.call(kh.api_versions_request, 0), 0)
    assert error == NONE


def add_partitions_frame(cid, tid, pid, epoch, entries):
    """AddPartitionsToTxn v1 with topic entries [(name, [partitions])], a
    name possibly repeated"""
    body = string(tid) + i64(pid) + i16(epoch) + array(
        entries, lambda t: string(t[0]) + array(t[1], i32))
    return kh.request_frame(ADD_PARTITIONS_TO_TXN, 1, cid, body)


def test_add_partitions_naming_partitions_many_times(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic, 8)
    t = Txn(txn_server, tid)
    t.client.close()
    t.client = kh.RawClient(txn_server.kafka_bootstrap, timeout=120)
    assert t.init() == NONE
    # one topic entry listing partitions 0..7 over and over, and the same
    # topic again in a second entry
    entries = [(topic, [i % 8 for i in range(BIG)]), (topic, [3, 1, 3])]
    r = kh.Reader(t.client.call(add_partitions_frame, tid, t.pid, t.epoch, entries))
    r.i32()
    answers = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
    assert [len(parts) for _, parts in answers] == [BIG, 3]
    assert {e for _, parts in answers for _, e in parts} == {NONE}
    assert state(txn_server, tid)[2] == "Ongoing"
    stored = txn_server.sql("SELECT partitions FROM streamlog.txn_state "
                            "WHERE transactional_id = %s", (tid,))[0][0]
    assert sorted(stored) == list(range(8))
    still_open(t.client)
    # and again, with partitions already in the transaction
    assert set(t.add({topic: [7, 0, 7, 0]}).values()) == {NONE}
    assert sorted(txn_server.sql("SELECT partitions FROM streamlog.txn_state "
                                 "WHERE transactional_id = %s", (tid,))[0][0]) == list(range(8))
    assert t.end(False) == NONE
    t.close()


def txn_offset_commit_frame(cid, tid, group, pid, epoch, topic, pairs):
    """TxnOffsetCommit v2 naming [(partition, offset)] in this order"""
    body = string(tid) + string(group) + i64(pid) + i16(epoch) + array(
        [topic], lambda t: string(t) + array(
            pairs, lambda po: i32(po[0]) + i64(po[1]) + i32(-1) + string("")))
    return kh.request_frame(TXN_OFFSET_COMMIT, 2, cid, body)


def test_txn_offset_commit_naming_a_partition_many_times(txn_server, unique_name):
    """As Kafka reads the request into a map, the last offset of a
    partition wins; each item is answered."""
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(txn_server, topic, 2)
    t = Txn(txn_server, tid)
    t.client.close()
    t.client = kh.RawClient(txn_server.kafka_bootstrap, timeout=120)
    assert t.init() == NONE
    assert set(t.add({topic: [0]}).values()) == {NONE}
    assert t.add_offsets(group) == NONE
    pairs = [(i % 2, i) for i in range(BIG)] + [(1, 5)]
    r = kh.Reader(t.client.call(txn_offset_commit_frame, tid, group, t.pid, t.epoch, topic,
                                pairs))
    r.i32()
    answers = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
    assert len(answers) == 1 and len(answers[0][1]) == BIG + 1
    assert {e for _, e in answers[0][1]} == {NONE}
    assert txn_server.sql("SELECT count(*) FROM streamlog.txn_pending_offset "
                          "WHERE producer_id = %s", (t.pid,)) == [(2,)]
    still_open(t.client)
    txn_append(txn_server, topic, t.pid, t.epoch, 0, ["a"])
    assert t.end(True) == NONE
    assert group_offsets(txn_server, group) == [(topic, 0, BIG - 2), (topic, 1, 5)]
    t.close()


def describe_all(client, tids):
    """DescribeTransactions v0: [(tid, error, state, pid)] in answer order"""
    frame = kh.request_frame(DESCRIBE_TRANSACTIONS, 0, client.next_correlation_id(),
                             carray(tids, cstring) + uvarint(0), header_version=2)
    client.send(frame)
    r = kh.Reader(client.recv_frame()[1])
    r_tags(r)
    r.i32()

    def one(r):
        error, tid, st = r.i16(), r_cstring(r), r_cstring(r)
        r.i32(), r.i64()
        pid, _epoch = r.i64(), r.i16()
        r_carray(r, lambda r: (r_cstring(r), r_carray(r, lambda r: r.i32()), r_tags(r)))
        r_tags(r)
        return tid, error, st, pid
    out = r_carray(r, one)
    r_tags(r)
    assert r.at_end()
    return out


def test_describe_transactions_naming_ids_many_times(txn_server, unique_name):
    tid, missing = unique_name("tx"), unique_name("none")
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    tids = [tid if i % 3 else missing for i in range(BIG // 4)] + ["", tid]
    with kh.RawClient(txn_server.kafka_bootstrap, timeout=120) as c:
        answers = describe_all(c, tids)
        still_open(c)
    assert [a[0] for a in answers] == tids
    for name, error, st, pid in answers:
        if name == tid:
            assert (error, st, pid) == (NONE, "Empty", t.pid)
        else:
            assert error == TRANSACTIONAL_ID_NOT_FOUND
    t.close()


def test_list_transactions_with_many_filters(txn_server, unique_name):
    tid = unique_name("tx")
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    states = ["Ongoing", "NoSuchState"] * (BIG // 20) + ["Empty"]
    pids = list(range(10**12, 10**12 + BIG // 2)) + [t.pid]
    body = carray(states, cstring) + carray(pids, i64) + uvarint(0)
    with kh.RawClient(txn_server.kafka_bootstrap, timeout=120) as c:
        frame = kh.request_frame(LIST_TRANSACTIONS, 0, c.next_correlation_id(), body,
                                 header_version=2)
        c.send(frame)
        r = kh.Reader(c.recv_frame()[1])
        still_open(c)
    r_tags(r)
    r.i32()
    assert r.i16() == NONE
    unknown = r_carray(r, r_cstring)
    listed = r_carray(r, lambda r: (r_cstring(r), r.i64(), r_cstring(r), r_tags(r))[:3])
    assert set(unknown) == {"NoSuchState"}
    assert listed == [(tid, t.pid, "Empty")]
    t.close()


def test_describe_producers_naming_a_partition_many_times(txn_server, unique_name):
    topic = unique_name("t")
    create_topic(txn_server, topic, 2)
    txn_append(txn_server, topic, 4242, 0, 0, ["a", "b"])
    body = carray([(topic, [0, 1] * (BIG // 4)), (topic, [0, 5])],
                  lambda t: cstring(t[0]) + carray(t[1], i32) + uvarint(0)) + uvarint(0)
    with kh.RawClient(txn_server.kafka_bootstrap, timeout=120) as c:
        frame = kh.request_frame(DESCRIBE_PRODUCERS, 0, c.next_correlation_id(), body,
                                 header_version=2)
        c.send(frame)
        r = kh.Reader(c.recv_frame()[1])
        still_open(c)
    r_tags(r)
    r.i32()

    def producer(r):
        pid, _epoch, _seq, _ts, _cepoch, start = (r.i64(), r.i32(), r.i32(), r.i64(), r.i32(),
                                                 r.i64())
        r_tags(r)
        return pid, start

    def partition(r):
        index, error, _ = r.i32(), r.i16(), r_cstring(r)
        producers = r_carray(r, producer)
        r_tags(r)
        return index, error, producers

    def topic_answer(r):
        name = r_cstring(r)
        parts = r_carray(r, partition)
        r_tags(r)
        return name, parts
    answers = r_carray(r, topic_answer)
    r_tags(r)
    assert r.at_end()
    assert [len(parts) for _, parts in answers] == [BIG // 2, 2]
    for _, parts in answers:
        for index, error, producers in parts:
            if index == 0:
                assert (error, producers) == (NONE, [(4242, 0)])
            elif index == 1:
                assert (error, producers) == (NONE, [])
            else:
                assert error == 3   # UNKNOWN_TOPIC_OR_PARTITION
    txn_server.sql("SELECT streamlog._txn_test_marker(%s, 0, 4242, 0::smallint, false, 0)",
                   (topic,))


def add_partitions_v4_frame(cid, transactions):
    """AddPartitionsToTxn v4 (flexible, a broker's batch): [(tid, [(topic, [p])])]"""
    def topic(t):
        return cstring(t[0]) + carray(t[1], i32) + uvarint(0)

    def txn(x):
        return (cstring(x[0]) + i64(1) + i16(0) + i8(0) + carray(x[1], topic) + uvarint(0))
    return kh.request_frame(ADD_PARTITIONS_TO_TXN, 4, cid, carray(transactions, txn) + uvarint(0),
                            header_version=2)


def test_add_partitions_v4_with_many_transactions_is_refused(txn_server, unique_name):
    """v4+ is for brokers: CLUSTER_AUTHORIZATION_FAILED, as Kafka answers a
    client, however many transactions and topics it names."""
    transactions = [(f"tx{i}", [(f"t{i % 7}", [0, 1, 2])]) for i in range(BIG // 10)]
    with kh.RawClient(txn_server.kafka_bootstrap, timeout=120) as c:
        c.send(add_partitions_v4_frame(c.next_correlation_id(), transactions))
        r = kh.Reader(c.recv_frame()[1])
        still_open(c)
    r_tags(r)
    r.i32()
    assert r.i16() == CLUSTER_AUTHORIZATION_FAILED


def test_write_txn_markers_is_refused(txn_server, unique_name):
    """WriteTxnMarkers v1 (flexible), a coordinator's call to a broker:
    CLUSTER_AUTHORIZATION_FAILED for every partition, the connection open."""
    def topic(t):
        return cstring(t) + carray([0, 1], i32) + uvarint(0)

    def marker(i):
        return i64(i) + i16(0) + i8(1) + carray(["a", "b"], topic) + i32(0) + uvarint(0)
    with kh.RawClient(txn_server.kafka_bootstrap, timeout=120) as c:
        c.send(kh.request_frame(WRITE_TXN_MARKERS, 1, c.next_correlation_id(),
                                carray(list(range(BIG // 20)), marker) + uvarint(0),
                                header_version=2))
        r = kh.Reader(c.recv_frame()[1])
        still_open(c)
    r_tags(r)

    def partition(r):
        index, error = r.i32(), r.i16()
        r_tags(r)
        return error

    def topic_answer(r):
        r_cstring(r)
        errors = r_carray(r, partition)
        r_tags(r)
        return errors

    def marker_answer(r):
        r.i64()
        errors = [e for es in r_carray(r, topic_answer) for e in es]
        r_tags(r)
        return errors
    answers = r_carray(r, marker_answer)
    assert len(answers) == BIG // 20
    assert {e for es in answers for e in es} == {CLUSTER_AUTHORIZATION_FAILED}
