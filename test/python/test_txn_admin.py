"""The transaction admin APIs (issue 14): DescribeTransactions (65) and
ListTransactions (66) through raw flexible frames, reading the
coordinator's state that InitProducerId, AddPartitionsToTxn and EndTxn
leave, as Kafka's kafka-transactions.sh describe / list show it."""

import time

import pytest

import kafka_helpers as kh
from kafka_helpers import i16, i64, uvarint
from pgserver import PgServer
from test_txn_coordinator import CONF, Txn, create_topic, txn_append

DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
TRANSACTIONAL_ID_NOT_FOUND = 105


@pytest.fixture(scope="module")
def txn_server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), conf=CONF, name="txadmin")
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


# -- flexible encodings ------------------------------------------------------------

def cstring(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def carray(items, encode):
    return uvarint(len(items) + 1) + b"".join(encode(x) for x in items)


def r_cstring(r):
    n = r.uvarint() - 1
    return None if n < 0 else r.take(n).decode()


def r_carray(r, decode):
    n = r.uvarint() - 1
    return [] if n < 0 else [decode(r) for _ in range(n)]


def r_tags(r):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.take(r.uvarint())


def describe_request(cid, tids):
    return kh.request_frame(DESCRIBE_TRANSACTIONS, 0, cid, carray(tids, cstring) + uvarint(0),
                            header_version=2)


def list_request(cid, states=(), pids=(), duration_ms=None):
    body = carray(list(states), cstring) + carray(list(pids), i64)
    version = 0
    if duration_ms is not None:
        body += i64(duration_ms)
        version = 1
    return kh.request_frame(LIST_TRANSACTIONS, version, cid, body + uvarint(0),
                            header_version=2)


def describe(server, tids):
    """{tid: (error, state, timeout, start_ms, pid, epoch, {topic: [partitions]})}"""
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(describe_request, tids))
    r_tags(r)                      # response header v1
    r.i32()

    def state(r):
        error, tid, st = r.i16(), r_cstring(r), r_cstring(r)
        timeout, start, pid, epoch = r.i32(), r.i64(), r.i64(), r.i16()

        def topic(r):
            name = r_cstring(r)
            parts = r_carray(r, lambda r: r.i32())
            r_tags(r)
            return name, sorted(parts)
        topics = dict(r_carray(r, topic))
        r_tags(r)
        return tid, (error, st, timeout, start, pid, epoch, topics)
    out = dict(r_carray(r, state))
    r_tags(r)
    assert r.at_end()
    return out


def list_transactions(server, **filters):
    """(error, unknown state filters, {tid: (pid, state)})"""
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(list_request, **filters))
    r_tags(r)
    r.i32()
    error = r.i16()
    unknown = r_carray(r, r_cstring)

    def state(r):
        tid, pid, st = r_cstring(r), r.i64(), r_cstring(r)
        r_tags(r)
        return tid, (pid, st)
    states = dict(r_carray(r, state))
    r_tags(r)
    assert r.at_end()
    return error, unknown, states


def producers_request(cid, topics):
    body = carray(list(topics.items()),
                  lambda t: cstring(t[0]) + carray(t[1], kh.i32) + uvarint(0))
    return kh.request_frame(DESCRIBE_PRODUCERS, 0, cid, body + uvarint(0), header_version=2)


def describe_producers(server, topics):
    """{(topic, partition): (error, {pid: (epoch, last_seq, last_ts, coord_epoch,
    txn_start)})}"""
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(producers_request, topics))
    r_tags(r)
    r.i32()
    out = {}

    def producer(r):
        pid, epoch, seq, ts, cepoch, start = r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64()
        r_tags(r)
        return pid, (epoch, seq, ts, cepoch, start)

    def partition(r):
        index, error, _ = r.i32(), r.i16(), r_cstring(r)
        producers = dict(r_carray(r, producer))
        r_tags(r)
        return index, (error, producers)

    def topic(r):
        name = r_cstring(r)
        for index, answer in r_carray(r, partition):
            out[(name, index)] = answer
        r_tags(r)
    r_carray(r, topic)
    r_tags(r)
    assert r.at_end()
    return out


# -- tests -----------------------------------------------------------------------------

def test_advertised_only_with_the_coordinator(txn_server, make_server):
    keys = kh.advertised_versions(txn_server.kafka_bootstrap)
    assert keys[DESCRIBE_TRANSACTIONS] == (0, 0)
    assert keys[LIST_TRANSACTIONS] == (0, 1)
    off = make_server(conf={"streamlog.transaction_coordinator": "off"})
    keys = kh.advertised_versions(off.kafka_bootstrap)
    assert DESCRIBE_TRANSACTIONS not in keys and LIST_TRANSACTIONS not in keys


def test_describe_follows_the_transaction(txn_server, unique_name):
    topic = unique_name("t")
    create_topic(txn_server, topic, 3)
    tid = unique_name("tx")
    p = Txn(txn_server, tid)
    try:
        assert p.init(timeout_ms=45000) == NONE
        d = describe(txn_server, [tid])[tid]
        assert d[:3] == (NONE, "Empty", 45000)
        assert d[3] == -1 and d[4:6] == (p.pid, p.epoch) and d[6] == {}

        before = int(time.time() * 1000)
        assert set(p.add({topic: [0, 2]}).values()) == {NONE}
        d = describe(txn_server, [tid])[tid]
        assert d[:3] == (NONE, "Ongoing", 45000)
        # the start is the server's clock: within a minute of the test's
        assert abs(d[3] - before) < 60000
        assert d[6] == {topic: [0, 2]}

        assert p.end(commit=True) == NONE
        d = describe(txn_server, [tid])[tid]
        assert d[1] == "CompleteCommit" and d[6] == {}
    finally:
        p.close()


def test_describe_unknown_id(txn_server, unique_name):
    tid = unique_name("nobody")
    d = describe(txn_server, [tid])
    assert d[tid][0] == TRANSACTIONAL_ID_NOT_FOUND


def test_list_filters(txn_server, unique_name):
    topic = unique_name("t")
    create_topic(txn_server, topic)
    ongoing, empty = Txn(txn_server, unique_name("on")), Txn(txn_server, unique_name("em"))
    try:
        assert ongoing.init() == NONE and empty.init() == NONE
        assert set(ongoing.add({topic: [0]}).values()) == {NONE}

        error, unknown, states = list_transactions(txn_server)
        assert error == NONE and unknown == []
        assert states[ongoing.tid] == (ongoing.pid, "Ongoing")
        assert states[empty.tid] == (empty.pid, "Empty")

        _, unknown, states = list_transactions(txn_server, states=["Ongoing", "Nonsense"])
        assert unknown == ["Nonsense"]
        assert ongoing.tid in states and empty.tid not in states

        _, _, states = list_transactions(txn_server, pids=[empty.pid])
        assert list(states) == [empty.tid]

        # v1: running longer than a day: not the transaction just begun
        _, _, states = list_transactions(txn_server, duration_ms=86400000)
        assert ongoing.tid not in states
        _, _, states = list_transactions(txn_server, duration_ms=0)
        assert ongoing.tid in states
        assert ongoing.end(commit=False) == NONE
    finally:
        ongoing.close()
        empty.close()


def test_describe_producers_shows_open_transactions(txn_server, unique_name):
    topic = unique_name("t")
    create_topic(txn_server, topic, 2)
    p = Txn(txn_server, unique_name("tx"))
    try:
        assert p.init() == NONE
        assert set(p.add({topic: [1]}).values()) == {NONE}
        txn_append(txn_server, topic, p.pid, p.epoch, 0, ["a", "b", "c"], partition=1)
        txn_append(txn_server, topic, p.pid, p.epoch, 3, ["d"], partition=1)

        d = describe_producers(txn_server, {topic: [0, 1, 7]})
        assert d[(topic, 0)] == (NONE, {})
        assert d[(topic, 7)][0] == UNKNOWN_TOPIC_OR_PARTITION
        error, producers = d[(topic, 1)]
        assert error == NONE
        epoch, seq, appended, coordinator_epoch, start = producers[p.pid]
        assert (epoch, seq, start) == (p.epoch, 3, 0)
        # the newest batch's time (its records', sent now); no marker yet
        assert abs(appended - time.time() * 1000) < 600_000
        assert coordinator_epoch == -1
        # the SQL view says the same
        assert txn_server.sql(
            "SELECT partition, producer_epoch, last_sequence, current_txn_start_offset "
            "FROM streamlog.producers WHERE topic = %s AND producer_id = %s",
            (topic, p.pid)) == [(1, p.epoch, 3, 0)]

        assert p.end(commit=True) == NONE
        _, producers = describe_producers(txn_server, {topic: [1]})[(topic, 1)]
        assert producers[p.pid][4] == -1
        # the COMMIT marker's time and coordinator epoch
        assert producers[p.pid][2] >= appended
        assert producers[p.pid][3] >= 0
        assert txn_server.sql(
            "SELECT current_txn_start_offset FROM streamlog.producers "
            "WHERE topic = %s AND producer_id = %s", (topic, p.pid)) == [(None,)]
    finally:
        p.close()


def test_describe_producers_unknown_topic(txn_server, unique_name):
    topic = unique_name("missing")
    d = describe_producers(txn_server, {topic: [0]})
    assert d[(topic, 0)][0] == UNKNOWN_TOPIC_OR_PARTITION
