"""The replicated log's storage (README, "The replicated log"): leader
epochs stamped in every stored batch and seen by clients in fetched bytes,
where an epoch ended (Kafka's OffsetForLeaderEpoch cases), truncation
(offsets, idempotent producers and the key index follow it, and an abort
puts everything back), and the side channel a follower reads batches with.

One node: the partition's leader epoch is set in its catalog row (as the
cluster's metadata would set it on a leader change) and the topic cache
is made to reload it by an ALTER of another topic."""

import struct
import time

import psycopg
import pytest

import kafka_helpers as kh
import offset_for_leader_epoch as ofle


def new_topic(srv, name, config="{}"):
    srv.sql("SELECT streamlog.create_topic(%s, 1, %s::jsonb)", (name, config))
    return srv.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (name,))[0][0]


def set_leader_epoch(srv, topic, epoch, other):
    """The epoch this node leads partition 0 of topic in, as the metadata
    would set it; other is a topic whose ALTER makes every backend reload."""
    srv.sql("UPDATE streamlog.partition p SET leader_epoch = %s FROM streamlog.topic t "
            "WHERE p.topic_id = t.topic_id AND t.name = %s AND p.partition = 0",
            (epoch, topic))
    bump = srv.sql("SELECT coalesce(max(1), 0) FROM streamlog.topic")[0][0]
    srv.sql("SELECT streamlog.alter_topic(%s, %s::jsonb)",
            (other, '{"retention.ms": "%d"}' % (86400000 + epoch * 1000 + bump)))


def produce_sql(srv, topic, values, key=None):
    with srv.connect() as c:
        with c.transaction():
            for v in values:
                c.execute("SELECT streamlog.produce(%s, %s::bytea, %s::bytea, partition => 0)",
                          (topic, key, v.encode()))


def fetched_batches(srv, topic, offset=0):
    """[(base_offset, partition_leader_epoch, record_count)] of a Fetch v4"""
    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, _hw, records = kh.parse_fetch_v4(
            c.call(kh.fetch_request, topic, 0, offset))[(topic, 0)]
    assert err == kh.NONE
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base, length, epoch = struct.unpack(">qii", records[pos:pos + 16])
        count = struct.unpack(">i", records[pos + 57:pos + 61])[0]
        out.append((base, epoch, count))
        pos += 12 + length
    return out


def replica_read(srv, topic_id, offset, max_bytes=1 << 20):
    return srv.sql("SELECT base_offset, last_offset, leader_epoch, append_time > 0, batch "
                   "FROM streamlog._replica_read(%s, 0, %s, %s)", (topic_id, offset, max_bytes))


def epoch_end(srv, topic_id, epoch):
    return tuple(srv.sql("SELECT * FROM streamlog._epoch_end_offset(%s, 0, %s)",
                         (topic_id, epoch))[0])


def truncate(srv, topic_id, offset):
    return srv.sql("SELECT streamlog._truncate_partition(%s, 0, %s)", (topic_id, offset))[0][0]


def values(srv, topic, from_offset=0):
    return [(off, v.decode())
            for off, _ts, _k, v, _h in kh.sql_records(srv, topic, 0, from_offset)]


def kafka_batch(pid, epoch, seq, vals, key=b"k", leader_epoch=-1):
    """A producer's batch; its partitionLeaderEpoch as a client sends it
    (-1), or any other value, which the broker must overwrite"""
    now = kh.now_ms()
    raw = kh.record_batch([(key, v.encode(), [], now) for v in vals],
                          producer=(pid, epoch, seq))
    return raw[:12] + struct.pack(">i", leader_epoch) + raw[16:]


def produce_kafka(client, topic, batch):
    return kh.parse_produce_v3(client.call(kh.produce_request, topic, [(0, batch)]))[(topic, 0)]


def init_producer(client):
    err, pid, epoch = kh.parse_init_producer_id(client.call(kh.init_producer_id_request, 0))
    assert err == kh.NONE
    return pid, epoch


def test_every_batch_carries_the_epoch_it_was_appended_in(make_server, unique_name):
    srv = make_server()
    topic, other = unique_name("epochs"), unique_name("other")
    topic_id = new_topic(srv, topic)
    new_topic(srv, other)

    produce_sql(srv, topic, ["a0", "a1"])                      # epoch 0, a node of its own
    set_leader_epoch(srv, topic, 3, other)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        # the client's -1, and a made-up 77, both become the leader's epoch
        assert produce_kafka(c, topic, kafka_batch(-1, -1, -1, ["b0"]))[0] == kh.NONE
        assert produce_kafka(c, topic, kafka_batch(-1, -1, -1, ["c0", "c1"],
                                                   leader_epoch=77))[0] == kh.NONE
    produce_sql(srv, topic, ["d0"])
    set_leader_epoch(srv, topic, 4, other)
    produce_sql(srv, topic, ["e0"])

    assert fetched_batches(srv, topic) == [(0, 0, 2), (2, 3, 1), (3, 3, 2), (5, 3, 1), (6, 4, 1)]
    # the side channel gives the same epochs, in its column and its bytes
    rows = replica_read(srv, topic_id, 0)
    assert [(r[0], r[1], r[2]) for r in rows] == [(0, 1, 0), (2, 2, 3), (3, 4, 3), (5, 5, 3),
                                                 (6, 6, 4)]
    assert all(r[3] for r in rows)
    assert [struct.unpack(">i", bytes(r[4])[12:16])[0] for r in rows] == [0, 3, 3, 3, 4]

    # a real client reads the records, CRCs checked (the epoch is outside the CRC)
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 7,
                        conf={"check.crcs": True})
    assert [m[2].decode() for m in got] == ["a0", "a1", "b0", "c0", "c1", "d0", "e0"]
    # and kafka-python finds every stored batch's CRC valid
    from kafka.record.default_records import DefaultRecordBatch
    assert all(DefaultRecordBatch(bytearray(r[4])).validate_crc() for r in rows)


def test_epoch_end_offsets_answer_kafkas_cases(make_server, unique_name):
    srv = make_server()
    topic, other = unique_name("ends"), unique_name("other")
    topic_id = new_topic(srv, topic)
    new_topic(srv, other)
    # epochs 2 at [0, 4), 5 at [4, 6), 7 at [6, 9)
    for epoch, vals in ((2, ["a", "b"]), (2, ["c", "d"]), (5, ["e", "f"]), (7, ["g"]),
                        (7, ["h", "i"])):
        set_leader_epoch(srv, topic, epoch, other)
        produce_sql(srv, topic, vals)

    assert epoch_end(srv, topic_id, -1) == (-1, -1)          # undefined
    assert epoch_end(srv, topic_id, 1) == (1, 0)             # below every epoch
    assert epoch_end(srv, topic_id, 2) == (2, 4)             # a middle epoch
    assert epoch_end(srv, topic_id, 5) == (5, 6)
    assert epoch_end(srv, topic_id, 3) == (2, 4)             # never seen, between two
    assert epoch_end(srv, topic_id, 6) == (5, 6)
    assert epoch_end(srv, topic_id, 7) == (7, 9)             # the current one: log end
    assert epoch_end(srv, topic_id, 8) == (-1, -1)           # newer than this node knows

    # a new epoch with nothing written in it yet: the last one ended at the end
    set_leader_epoch(srv, topic, 9, other)
    assert epoch_end(srv, topic_id, 7) == (7, 9)
    assert epoch_end(srv, topic_id, 8) == (7, 9)
    assert epoch_end(srv, topic_id, 9) == (9, 9)


def test_truncation_keeps_offsets_producers_and_key_index_right(make_server, unique_name):
    srv = make_server()
    topic, other = unique_name("trunc"), unique_name("other")
    topic_id = new_topic(srv, topic, '{"key.index": "true"}')
    new_topic(srv, other)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce_kafka(c, topic, kafka_batch(pid, epoch, 0, ["a0", "a1", "a2"],
                                                   key=b"ka")) == (kh.NONE, 0)
        gone = kafka_batch(pid, epoch, 3, ["b0", "b1"], key=b"kb")
        assert produce_kafka(c, topic, gone) == (kh.NONE, 3)
        produce_sql(srv, topic, ["c0"], key=b"kc")            # offset 5
        assert kh.high_watermark(srv, topic) == 6

        # a new leader's epoch ended at 3: the follower drops [3, 6)
        assert truncate(srv, topic_id, 3) == 2
        assert kh.high_watermark(srv, topic) == 3
        assert values(srv, topic) == [(0, "a0"), (1, "a1"), (2, "a2")]
        assert [r[0] for r in replica_read(srv, topic_id, 0)] == [0]
        keys = srv.sql(f"SELECT \"offset\" FROM streamlog_data.t{topic_id}_keys "
                       "WHERE partition = 0 ORDER BY 1")
        assert [r[0] for r in keys] == [0, 1, 2]
        assert srv.sql("SELECT count(*) FROM streamlog.latest(%s, 'kb'::text)", (topic,))[0][0] == 0

        # the truncated batch, retried, is stored again at the truncation point
        assert produce_kafka(c, topic, gone) == (kh.NONE, 3)
        # and is a duplicate once stored
        assert produce_kafka(c, topic, gone) == (kh.NONE, 3)
        produce_sql(srv, topic, ["d0"], key=b"kd")
    assert values(srv, topic) == [(0, "a0"), (1, "a1"), (2, "a2"), (3, "b0"), (4, "b1"),
                                  (5, "d0")]
    assert srv.sql("SELECT \"offset\" FROM streamlog.latest(%s, 'kb'::text)", (topic,))[0][0] == 4
    # the state survives a restart: the same end, the same records
    srv.restart()
    assert kh.high_watermark(srv, topic) == 6
    produce_sql(srv, topic, ["e0"])
    assert values(srv, topic)[-1] == (6, "e0")


def test_truncation_edges_and_rollback(make_server, unique_name):
    srv = make_server()
    topic = unique_name("edges")
    topic_id = new_topic(srv, topic)
    for i in range(4):
        produce_sql(srv, topic, [f"v{i}"])
    assert kh.high_watermark(srv, topic) == 4

    # at or past the end: nothing
    assert truncate(srv, topic_id, 4) == 0
    assert truncate(srv, topic_id, 10) == 0
    assert kh.high_watermark(srv, topic) == 4

    # rolled back: the batches, the end and the next offset are as they were
    with srv.connect(autocommit=False) as c:
        assert c.execute("SELECT streamlog._truncate_partition(%s, 0, 1)",
                         (topic_id,)).fetchone()[0] == 3
        assert c.execute("SELECT high_watermark FROM streamlog.partitions "
                         "WHERE topic = %s", (topic,)).fetchone()[0] == 1
        c.rollback()
    assert kh.high_watermark(srv, topic) == 4
    assert [v for _o, v in values(srv, topic)] == ["v0", "v1", "v2", "v3"]
    produce_sql(srv, topic, ["v4"])
    assert values(srv, topic)[-1] == (4, "v4")

    # in a savepoint rolled back, likewise
    with srv.connect(autocommit=False) as c:
        c.execute("SAVEPOINT s")
        c.execute("SELECT streamlog._truncate_partition(%s, 0, 2)", (topic_id,))
        c.execute("ROLLBACK TO SAVEPOINT s")
        c.commit()
    assert kh.high_watermark(srv, topic) == 5

    # below the log start: the log is emptied and starts there
    srv.sql("SELECT streamlog.delete_records(%s, 0, 3)", (topic,))
    assert truncate(srv, topic_id, 1) == 2, "the batches above the log start"
    assert srv.sql("SELECT log_start_offset, high_watermark FROM streamlog.partitions "
                   "WHERE topic = %s", (topic,))[0] == (1, 1)
    produce_sql(srv, topic, ["w1"])
    assert values(srv, topic, 1) == [(1, "w1")]


def test_side_channel_is_for_superusers_and_bounded(make_server, unique_name):
    srv = make_server()
    topic = unique_name("side")
    topic_id = new_topic(srv, topic)
    for i in range(5):
        produce_sql(srv, topic, [f"v{i}" * 100])
    # from the middle of nothing: the batch holding the offset first
    rows = replica_read(srv, topic_id, 2, max_bytes=1)
    assert [(r[0], r[1]) for r in rows] == [(2, 2)], "at least one batch"
    rows = replica_read(srv, topic_id, 1, max_bytes=2 * len(bytes(rows[0][4])))
    assert [r[0] for r in rows] == [1, 2]
    assert replica_read(srv, topic_id, 5) == []
    with pytest.raises(psycopg.errors.UndefinedObject):
        replica_read(srv, 987654, 0)

    srv.sql("CREATE ROLE side_reader LOGIN")
    srv.sql("GRANT USAGE ON SCHEMA streamlog TO side_reader")
    with psycopg.connect(srv.dsn + " user=side_reader", autocommit=True) as c:
        for call in ("SELECT * FROM streamlog._replica_read(%s, 0, 0, 100)",
                     "SELECT * FROM streamlog._epoch_end_offset(%s, 0, 0)",
                     "SELECT streamlog._truncate_partition(%s, 0, 0)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(call, (topic_id,))


def test_offset_for_leader_epoch_answers_every_version(make_server, unique_name):
    srv = make_server()
    topic, other = unique_name("ofle"), unique_name("other")
    new_topic(srv, topic)
    new_topic(srv, other)
    # epochs 2 at [0, 2), 5 at [2, 3); the node leads in 5
    for epoch, vals in ((2, ["a", "b"]), (5, ["c"])):
        set_leader_epoch(srv, topic, epoch, other)
        produce_sql(srv, topic, vals)

    with kh.RawClient(srv.kafka_bootstrap) as c:
        asked = {topic: [(0, -1, 1), (0, -1, 2), (0, -1, 3), (0, -1, 5), (0, -1, 6),
                         (0, -1, -1)]}
        for version in range(5):
            got = [ofle.ask(c, version, {topic: [p]})[(topic, 0)] for p in asked[topic]]
            want = [(0, 1, 0), (0, 2, 2), (0, 2, 2), (0, 5, 3), (0, -1, -1), (0, -1, -1)]
            if version == 0:
                want = [(e, None, o) for e, _ep, o in want]
            assert got == want, f"v{version}"
        # unknown topic and partition; the current leader epoch is not
        # checked on a node of its own (as Fetch and ListOffsets)
        got = ofle.ask(c, 3, {topic: [(1, -1, 2), (0, 99, 2)], "no-such-topic": [(0, -1, 2)]})
        assert got[(topic, 1)][0] == kh.UNKNOWN_TOPIC_OR_PARTITION
        assert got[(topic, 0)] == (0, 2, 2)
        assert got[("no-such-topic", 0)][0] == kh.UNKNOWN_TOPIC_OR_PARTITION
        # ApiVersions advertises it
        assert kh.advertised_versions(srv.kafka_bootstrap)[ofle.OFFSET_FOR_LEADER_EPOCH] == (0, 4)



def test_an_append_waits_for_a_truncation_and_lands_at_its_offset(make_server, unique_name):
    """A commit that would append while a truncation is open waits for it
    (else its offsets, reserved before, would land above the new end)"""
    import threading

    srv = make_server()
    topic = unique_name("fence")
    topic_id = new_topic(srv, topic)
    for v in ("v0", "v1", "v2", "v3"):
        produce_sql(srv, topic, [v])                           # a batch each
    with srv.connect(autocommit=False) as t, srv.connect(autocommit=False) as p:
        t.execute("SELECT streamlog._truncate_partition(%s, 0, 2)", (topic_id,))
        p.execute("SELECT streamlog.produce(%s, NULL, 'late'::bytea, partition => 0)", (topic,))
        pid = p.info.backend_pid
        done = threading.Event()
        thread = threading.Thread(target=lambda: (p.commit(), done.set()))
        thread.start()
        try:
            kh.wait_until(lambda: srv.sql(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
                == [("Extension",)], 30, "the append to wait for the truncation")
            assert not done.is_set()
        finally:
            t.commit()
            thread.join(30)
        assert done.is_set()
    assert values(srv, topic) == [(0, "v0"), (1, "v1"), (2, "late")]


def test_offset_for_leader_epoch_is_authorized_as_kafka_does(make_server, unique_name):
    """A consumer needs DESCRIBE on the topic, a follower (replica_id >= 0)
    CLUSTER_ACTION on the cluster (Kafka's KafkaApis)"""
    role = "ofle_client"
    srv = make_server(conf={"streamlog.anonymous_role": role})
    srv.sql(f"CREATE ROLE {role} LOGIN")
    topic = unique_name("ofle_acl")
    new_topic(srv, topic)
    produce_sql(srv, topic, ["a"])
    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert ofle.ask(c, 3, {topic: [(0, -1, 0)]})[(topic, 0)][0] == 29
        assert ofle.ask(c, 3, {topic: [(0, -1, 0)]}, replica_id=2)[(topic, 0)][0] == 31
        srv.sql("SELECT streamlog.grant('describe', 'topic', %s, %s, 'literal')", (topic, role))
        assert ofle.ask(c, 3, {topic: [(0, -1, 0)]})[(topic, 0)] == (0, 0, 1)
        assert ofle.ask(c, 3, {topic: [(0, -1, 0)]}, replica_id=2)[(topic, 0)][0] == 31
        srv.sql("SELECT streamlog.grant('cluster_action', 'cluster', NULL, %s, 'literal')",
                (role,))
        assert ofle.ask(c, 3, {topic: [(0, -1, 0)]}, replica_id=2)[(topic, 0)] == (0, 0, 1)


def list_offsets_v4(cid, topic, timestamp):
    body = kh.i32(-1) + kh.i8(0) + kh.array([topic], lambda t: kh.string(t) + kh.array(
        [0], lambda p: kh.i32(p) + kh.i32(-1) + kh.i64(timestamp)))
    return kh.request_frame(kh.LIST_OFFSETS, 4, cid, body)


def list_offsets_v4_result(body):
    """(error_code, offset, leader_epoch)"""
    r = kh.Reader(body)
    r.i32()
    [(_topic, [(_p, error, _ts, offset, epoch)])] = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16(), r.i64(), r.i64(), r.i32()))))
    return error, offset, epoch


def test_list_offsets_gives_the_epoch_of_the_offset_it_found(make_server, unique_name):
    """As Kafka's leader: the log start's and a timestamp's offsets come
    with the epoch of the batch that holds them"""
    srv = make_server()
    topic, other = unique_name("lo_epochs"), unique_name("other")
    new_topic(srv, topic)
    new_topic(srv, other)
    # an hour ago and half an hour later: within retention.ms, so that the
    # cleaner does not remove the first batch under the test
    first = int(time.time() * 1000) - 3_600_000
    with kh.RawClient(srv.kafka_bootstrap) as c:
        for epoch, ts in ((2, first), (5, first + 1_800_000)):
            set_leader_epoch(srv, topic, epoch, other)
            batch = kh.record_batch([(b"k", str(ts).encode(), [], ts)])
            assert produce_kafka(c, topic, batch)[0] == kh.NONE
        assert list_offsets_v4_result(c.call(list_offsets_v4, topic, -2)) == (0, 0, 2)
        assert list_offsets_v4_result(c.call(list_offsets_v4, topic, first)) == (0, 0, 2)
        assert list_offsets_v4_result(c.call(list_offsets_v4, topic, first + 900_000)) == (0, 1, 5)
        srv.sql("SELECT streamlog.delete_records(%s, 0, 1)", (topic,))
        assert list_offsets_v4_result(c.call(list_offsets_v4, topic, -2)) == (0, 1, 5)


def test_truncation_drops_the_segments_past_it(make_server, unique_name):
    """Segments wholly at or past the offset go; the one holding it is the
    active segment again, and the state is the same after a restart"""
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    topic = unique_name("segs")
    topic_id = new_topic(srv, topic, '{"segment.ms": "1", "retention.ms": "-1"}')

    def segment_count():
        return srv.sql("SELECT count(*) FROM streamlog.segment WHERE topic_id = %s",
                       (topic_id,))[0][0]

    for i in range(4):                      # one record per segment
        produce_sql(srv, topic, [f"r{i}"])
        kh.wait_until(lambda: segment_count() >= i + 2, 60, f"segment roll {i}")
    srv.sql("SELECT streamlog.alter_topic(%s, '{\"segment.ms\": \"604800000\"}')", (topic,))
    before = srv.sql("SELECT seq, relid::text FROM streamlog.segment WHERE topic_id = %s "
                     "ORDER BY seq", (topic_id,))
    assert len(before) == 5

    assert truncate(srv, topic_id, 1) == 3
    after = srv.sql("SELECT seq, relid::text, base_offset FROM streamlog.segment "
                    "WHERE topic_id = %s ORDER BY seq", (topic_id,))
    assert [(s, r) for s, r, _b in after] == before[:2]
    assert after[1][2] == 1
    for _seq, relid in before[2:]:
        assert srv.sql("SELECT to_regclass(%s)", (relid,)) == [(None,)]
    produce_sql(srv, topic, ["w1"])
    assert values(srv, topic) == [(0, "r0"), (1, "w1")]
    assert srv.sql(f"SELECT count(*) FROM {before[1][1]}")[0][0] == 1
    srv.restart()
    produce_sql(srv, topic, ["w2"])
    assert values(srv, topic) == [(0, "r0"), (1, "w1"), (2, "w2")]
    assert srv.sql(f"SELECT count(*) FROM {before[1][1]}")[0][0] == 2


def fetch_v12(cid, topic, offset, last_fetched_epoch):
    """Fetch v12 (flexible, the first with last_fetched_epoch), one
    partition, no session"""
    from kafka_primitives import uvarint
    part = (kh.i32(0) + kh.i32(-1) + kh.i64(offset) + kh.i32(last_fetched_epoch)
            + kh.i64(-1) + kh.i32(1 << 20) + uvarint(0))
    body = kh.i32(-1) + kh.i32(0) + kh.i32(1) + kh.i32(1 << 20) + kh.i8(0)
    body += kh.i32(0) + kh.i32(-1)
    body += uvarint(2) + kh.compact_string(topic) + uvarint(2) + part + uvarint(0)
    body += uvarint(1) + kh.compact_string("") + uvarint(0)
    return kh.request_frame(kh.FETCH, 12, cid, body, header_version=2)


def fetch_v12_result(body):
    """(error_code, diverging (epoch, end_offset) or None, record bytes)"""
    r = kh.Reader(body)
    r.uvarint()                                     # response header tags
    r.i32(), r.i16(), r.i32()
    assert r.uvarint() == 2                         # one topic
    r.take(r.uvarint() - 1)
    assert r.uvarint() == 2                         # one partition
    r.i32()
    err = r.i16()
    r.i64(), r.i64(), r.i64()
    aborted = r.uvarint()
    for _ in range(max(aborted - 1, 0)):
        r.i64(), r.i64(), r.uvarint()
    r.i32()                                         # preferred_read_replica
    n = r.uvarint()
    records = r.take(n - 1) if n > 0 else b""
    diverging = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        data = kh.Reader(r.take(size))
        if tag == 0:
            diverging = (data.i32(), data.i64())
    return err, diverging, records


def test_fetch_names_the_diverging_epoch(make_server, unique_name):
    """A Fetch v12+ with the epoch of the last batch the client read gets,
    when that epoch ended before its fetch offset here, no records but
    the epoch and offset to truncate to (KIP-320, Kafka's fetchRecords)"""
    srv = make_server()
    topic, other = unique_name("diverge"), unique_name("other")
    new_topic(srv, topic)
    new_topic(srv, other)
    for epoch, vals in ((2, ["a", "b"]), (5, ["c"])):          # 2 at [0, 2), 5 at [2, 3)
        set_leader_epoch(srv, topic, epoch, other)
        produce_sql(srv, topic, vals)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        # it read epoch 3, which this log never had: epoch 2 ended at 2
        assert fetch_v12_result(c.call(fetch_v12, topic, 3, 3))[:2] == (0, (2, 2))
        # it read epoch 2 up to 3, past where epoch 2 ended here
        assert fetch_v12_result(c.call(fetch_v12, topic, 3, 2))[:2] == (0, (2, 2))
        # in step: records
        err, diverging, records = fetch_v12_result(c.call(fetch_v12, topic, 2, 2))
        assert (err, diverging) == (0, None) and len(records) > 0
        # without the field (-1), as consumers send it: as before
        assert fetch_v12_result(c.call(fetch_v12, topic, 0, -1))[:2] == (0, None)
        # an epoch newer than this log knows
        assert fetch_v12_result(c.call(fetch_v12, topic, 3, 9))[0] == 1  # OFFSET_OUT_OF_RANGE
