"""OffsetFetch with require_stable (v7+, KIP-447) as Kafka answers it: a
partition whose group offset is pending in an open transaction
(TxnOffsetCommit before EndTxn) gets UNSTABLE_OFFSET_COMMIT and no offset;
without require_stable, or once the transaction ended, the committed
offset."""

import kafka_helpers as kh
from kafka_helpers import i8, i32, uvarint
from test_txn_admin import carray, cstring, r_carray, r_cstring, r_tags, txn_server  # noqa: F401
from test_txn_coordinator import Txn, create_topic, txn_offset_commit

OFFSET_FETCH = 9
NONE = 0
UNSTABLE_OFFSET_COMMIT = 88


def offset_fetch_v7_request(cid, group, topic, partitions, require_stable):
    body = cstring(group) + carray(
        [topic], lambda t: cstring(t) + carray(partitions, i32) + uvarint(0)) \
        + i8(1 if require_stable else 0) + uvarint(0)
    return kh.request_frame(OFFSET_FETCH, 7, cid, body, header_version=2)


def offset_fetch_v8_request(cid, group, topic, partitions, require_stable):
    body = carray([group], lambda g: cstring(g) + carray(
        [topic], lambda t: cstring(t) + carray(partitions, i32) + uvarint(0)) + uvarint(0)) \
        + i8(1 if require_stable else 0) + uvarint(0)
    return kh.request_frame(OFFSET_FETCH, 8, cid, body, header_version=2)


def _partition(r):
    index, offset, _epoch, _meta, error = r.i32(), r.i64(), r.i32(), r_cstring(r), r.i16()
    r_tags(r)
    return index, (offset, error)


def _topic(r):
    name = r_cstring(r)
    parts = r_carray(r, _partition)
    r_tags(r)
    return name, parts


def fetch_offsets(server, group, topic, partitions, require_stable, version=7):
    """{partition: (offset, error)}"""
    builder = offset_fetch_v7_request if version == 7 else offset_fetch_v8_request
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(builder, group, topic, partitions, require_stable))
    r_tags(r)
    r.i32()
    if version == 7:
        topics = r_carray(r, _topic)
        assert r.i16() == NONE
    else:
        def group_(r):
            r_cstring(r)
            topics = r_carray(r, _topic)
            assert r.i16() == NONE
            r_tags(r)
            return topics
        topics = r_carray(r, group_)[0]
    r_tags(r)
    assert r.at_end()
    return {p: answer for _name, parts in topics for p, answer in parts}


def test_pending_transactional_offset_is_unstable(txn_server, unique_name):  # noqa: F811
    topic, group = unique_name("t"), unique_name("g")
    create_topic(txn_server, topic, 2)
    t = Txn(txn_server, unique_name("tx"))
    try:
        assert t.init() == NONE
        assert t.add_offsets(group) == NONE
        assert txn_offset_commit(t, group, topic, {0: 5}) == {(topic, 0): NONE}
        assert t.end(True) == NONE
        assert t.add_offsets(group) == NONE
        assert txn_offset_commit(t, group, topic, {0: 9}) == {(topic, 0): NONE}

        for version in (7, 8):
            assert fetch_offsets(txn_server, group, topic, [0, 1], True, version) == {
                0: (-1, UNSTABLE_OFFSET_COMMIT), 1: (-1, NONE)}
            assert fetch_offsets(txn_server, group, topic, [0, 1], False, version) == {
                0: (5, NONE), 1: (-1, NONE)}

        assert t.end(True) == NONE
        assert fetch_offsets(txn_server, group, topic, [0], True) == {0: (9, NONE)}
    finally:
        t.close()
