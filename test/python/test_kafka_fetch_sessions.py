"""Incremental fetch sessions (KIP-227), with raw Fetch v11 frames.

A full fetch (session id 0, epoch 0) makes a session; later fetches name
it with the next epoch, list only the partitions whose position changed
(or that are forgotten), and get back only the partitions with something
new.  Kafka's Java consumer uses sessions; the clients installed here do
not: librdkafka 2.0.2 (confluent-kafka, kcat), kafkajs and kafka-python
2.0.2 send session id 0 and epoch -1 on every Fetch, which stays
sessionless (test_sessionless_fetches_answer_every_partition).  The cache is bounded
(streamlog.fetch_session_cache_slots, Kafka's
max.incremental.fetch.session.cache.slots) and evicts as Kafka's does."""

import threading
import time

import kafka_helpers as kh
from kafka_primitives import i8, i32, i64

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_TOPIC_ID_ERROR = 106


def fetch_v11(cid, session_id, epoch, partitions, forgotten=(), max_wait_ms=0, min_bytes=1,
              replica_id=-1):
    """Fetch v11: partitions = [(topic, partition, offset)], forgotten =
    [(topic, partition)]."""
    topics = {}
    for topic, p, offset in partitions:
        topics.setdefault(topic, []).append((p, offset))
    gone = {}
    for topic, p in forgotten:
        gone.setdefault(topic, []).append(p)
    body = i32(replica_id) + i32(max_wait_ms) + i32(min_bytes) + i32(50 * 1024 * 1024) + i8(0)
    body += i32(session_id) + i32(epoch)
    body += kh.array(list(topics.items()), lambda t: kh.string(t[0]) + kh.array(
        t[1], lambda po: i32(po[0]) + i32(-1) + i64(po[1]) + i64(-1) + i32(1024 * 1024)))
    body += kh.array(list(gone.items()), lambda t: kh.string(t[0]) + kh.array(t[1], i32))
    body += kh.string("")
    return kh.request_frame(kh.FETCH, 11, cid, body)


def parse_fetch_v11(body):
    """(error, session_id, {(topic, partition): (error, high_watermark, records)})
    keeping the answer's order in the dict"""
    r = kh.Reader(body)
    r.i32()  # throttle_time_ms
    error = r.i16()
    session_id = r.i32()
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
            r.array(lambda r: (r.i64(), r.i64())), r.i32(), r.bytes())))):
        for p, err, hw, _lso, _lstart, _aborted, _preferred, records in parts:
            out[(topic, p)] = (err, hw, records or b"")
    assert r.at_end()
    return error, session_id, out


def call(client, *args, **kwargs):
    return parse_fetch_v11(client.call(fetch_v11, *args, **kwargs))


def produce(conn, topic, partition, n=1):
    conn.execute("SELECT streamlog.produce(%s, NULL, 'v'::bytea, partition => %s) "
                 "FROM generate_series(1, %s)", (topic, partition, n))


def new_topic(conn, name, partitions):
    conn.execute("SELECT streamlog.create_topic(%s, %s)", (name, partitions))


def test_incremental_fetches_carry_only_what_changed(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("sess")
    new_topic(conn, topic, 3)
    produce(conn, topic, 0, 2)

    with kh.RawClient(srv.kafka_bootstrap) as c:
        # full fetch: every partition, and a session
        err, sid, parts = call(c, 0, 0, [(topic, p, 0) for p in range(3)])
        assert err == kh.NONE
        assert sid != 0
        assert set(parts) == {(topic, 0), (topic, 1), (topic, 2)}
        assert parts[(topic, 0)][1] == 2 and parts[(topic, 0)][2]
        assert parts[(topic, 1)] == (kh.NONE, 0, b"")

        # the client moves partition 0 on; nothing else changed: empty answer
        err, sid2, parts = call(c, sid, 1, [(topic, 0, 2)])
        assert (err, sid2, parts) == (kh.NONE, sid, {})
        # and again, naming no partition at all
        err, _, parts = call(c, sid, 2, [])
        assert (err, parts) == (kh.NONE, {})

        # new records in partition 2, read from the position the session keeps
        produce(conn, topic, 2, 3)
        err, _, parts = call(c, sid, 3, [])
        assert err == kh.NONE
        assert list(parts) == [(topic, 2)]
        assert parts[(topic, 2)][1] == 3 and parts[(topic, 2)][2]

        # forgotten partitions are no longer read
        err, _, parts = call(c, sid, 4, [(topic, 2, 3)], forgotten=[(topic, 1)])
        assert (err, parts) == (kh.NONE, {})
        produce(conn, topic, 1)
        produce(conn, topic, 0)
        err, _, parts = call(c, sid, 5, [])
        assert err == kh.NONE
        assert list(parts) == [(topic, 0)]
        assert parts[(topic, 0)][1] == 3

        # a partition added later is answered whole on its first fetch
        err, _, parts = call(c, sid, 6, [(topic, 0, 3), (topic, 1, 0)])
        assert err == kh.NONE
        assert list(parts) == [(topic, 1)]
        assert parts[(topic, 1)][1] == 1 and parts[(topic, 1)][2]
    kh.assert_server_healthy(srv, topic)


def test_session_errors_and_closing(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("sesserr")
    new_topic(conn, topic, 1)
    produce(conn, topic, 0)

    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, sid, _ = call(c, 0, 0, [(topic, 0, 0)])
        assert err == kh.NONE and sid != 0

        # an id the broker never gave
        other = sid + 1 if sid < 2**31 - 1 else sid - 1
        assert call(c, other, 1, []) == (FETCH_SESSION_ID_NOT_FOUND, 0, {})
        # an epoch out of step: the session stays as it was
        assert call(c, sid, 5, []) == (INVALID_FETCH_SESSION_EPOCH, 0, {})
        err, sid2, parts = call(c, sid, 1, [(topic, 0, 1)])
        assert (err, sid2, parts) == (kh.NONE, sid, {})
        # the same epoch twice (a retried fetch) is out of step too
        assert call(c, sid, 1, [])[0] == INVALID_FETCH_SESSION_EPOCH
        assert call(c, sid, 2, [])[0] == kh.NONE

        # epoch -1 closes the session; that fetch is answered sessionless
        err, sid3, parts = call(c, sid, -1, [(topic, 0, 0)])
        assert (err, sid3) == (kh.NONE, 0)
        assert parts[(topic, 0)][1] == 1
        assert call(c, sid, 3, [])[0] == FETCH_SESSION_ID_NOT_FOUND

        # a full fetch naming an old session replaces it with a new one
        _, sid4, _ = call(c, 0, 0, [(topic, 0, 1)])
        _, sid5, _ = call(c, sid4, 0, [(topic, 0, 1)])
        assert sid5 not in (0, sid4)
        assert call(c, sid4, 1, [])[0] == FETCH_SESSION_ID_NOT_FOUND
        assert call(c, sid5, 1, [])[0] == kh.NONE

        # forgetting every partition ends the session
        err, sid6, parts = call(c, sid5, 2, [], forgotten=[(topic, 0)])
        assert (err, sid6, parts) == (kh.NONE, 0, {})
        assert call(c, sid5, 3, [])[0] == FETCH_SESSION_ID_NOT_FOUND
    kh.assert_server_healthy(srv, topic)


def test_sessionless_fetches_answer_every_partition(make_server, unique_name):
    """session id 0 and epoch -1, as librdkafka sends: no session, every
    partition in every answer; librdkafka itself keeps reading"""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("nosess")
    new_topic(conn, topic, 2)
    produce(conn, topic, 0, 3)

    with kh.RawClient(srv.kafka_bootstrap) as c:
        for _ in range(2):
            err, sid, parts = call(c, 0, -1, [(topic, 0, 3), (topic, 1, 0)])
            assert (err, sid) == (kh.NONE, 0)
            assert parts == {(topic, 0): (kh.NONE, 3, b""), (topic, 1): (kh.NONE, 0, b"")}
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 3)
    assert len(got) == 3


def test_incremental_fetch_waits_for_records(make_server, unique_name):
    """A parked incremental fetch answers when a partition of the session
    grows, with that partition alone"""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("sesswait")
    new_topic(conn, topic, 4)

    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        _, sid, parts = call(c, 0, 0, [(topic, p, 0) for p in range(4)])
        assert sid != 0 and len(parts) == 4
        cid = c.next_correlation_id()
        c.send(fetch_v11(cid, sid, 1, [], max_wait_ms=30000))
        # a parked request keeps the epoch it was sent with: the session is at 2
        late = threading.Timer(0.5, produce, (srv.connect(), topic, 3))
        late.start()
        got, body = c.recv_frame()
        late.join()
        assert got == cid
        err, sid2, parts = parse_fetch_v11(body)
        assert (err, sid2) == (kh.NONE, sid)
        assert list(parts) == [(topic, 3)]
        assert parts[(topic, 3)][1] == 1
        assert call(c, sid, 2, [(topic, 3, 1)]) == (kh.NONE, sid, {})


def test_partitions_with_records_go_to_the_end(make_server, unique_name):
    """With a response too small for all, a partition that got records
    moves to the end of the session, so that the others are read first
    next time (Kafka's IncrementalFetchContext)"""
    srv = make_server(conf={"streamlog.fetch_max_bytes": "1kB"})
    conn = srv.connect()
    topic = unique_name("sessrot")
    new_topic(conn, topic, 3)
    for p in (0, 0, 0, 1, 2):   # a batch of 2000 B each, one commit each
        conn.execute("SELECT streamlog.produce(%s, NULL, repeat('x', 2000)::bytea, "
                     "partition => %s)", (topic, p))

    def read(parts):
        return [k for k, v in parts.items() if v[2]]

    with kh.RawClient(srv.kafka_bootstrap) as c:
        _, sid, parts = call(c, 0, 0, [(topic, p, 0) for p in range(3)])
        assert read(parts) == [(topic, 0)]   # one whole first batch, KIP-74
        _, _, parts = call(c, sid, 1, [(topic, 0, 1)])
        assert read(parts) == [(topic, 0)]   # first in the session still; now last
        # partition 0 has more, but 1 comes first now, then 2
        _, _, parts = call(c, sid, 2, [(topic, 0, 2)])
        assert read(parts) == [(topic, 1)]
        _, _, parts = call(c, sid, 3, [(topic, 1, 1)])
        assert read(parts) == [(topic, 2)]
        _, _, parts = call(c, sid, 4, [(topic, 2, 1)])
        assert read(parts) == [(topic, 0)]


def test_bounded_cache_evicts_as_kafka(make_server, unique_name):
    srv = make_server(conf={"streamlog.broker_workers": "1",
                            "streamlog.fetch_session_cache_slots": "2"})
    conn = srv.connect()
    topic = unique_name("sesscache")
    new_topic(conn, topic, 4)

    a, b, d, e = (kh.RawClient(srv.kafka_bootstrap) for _ in range(4))
    try:
        _, sa, _ = call(a, 0, 0, [(topic, 0, 0)])
        _, sb, _ = call(b, 0, 0, [(topic, p, 0) for p in range(2)])
        assert 0 not in (sa, sb)
        # full, and both sessions younger than the eviction time: no session
        # for a consumer, whatever its size
        err, sd, parts = call(d, 0, 0, [(topic, p, 0) for p in range(4)])
        assert (err, sd, len(parts)) == (kh.NONE, 0, 4)
        assert call(a, sa, 1, [])[0] == kh.NONE
        assert call(b, sb, 1, [])[0] == kh.NONE

        # a replica's fetch may evict a consumer's session no larger than its
        # own (at equal sizes a replica's ranks above a consumer's): the
        # smallest, a's, goes for one of a single partition
        _, se, _ = call(e, 0, 0, [(topic, 0, 0)], replica_id=7)
        assert se != 0
        assert call(a, sa, 2, [])[0] == FETCH_SESSION_ID_NOT_FOUND
        assert call(b, sb, 2, [])[0] == kh.NONE

        # a session unused for longer than the eviction time goes first
        conn.execute("ALTER SYSTEM SET streamlog.fetch_session_eviction_ms = 1")
        srv.reload()
        time.sleep(0.05)  # let the sessions age past 1 ms (not a timing assertion)
        deadline = time.monotonic() + 30
        while True:
            _, sd, _ = call(d, 0, 0, [(topic, 3, 0)])
            if sd != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)   # the worker reads the setting at its next loop
        assert sd != 0
        # b was last used after e's session was made: e's is the oldest
        assert call(e, se, 1, [])[0] == FETCH_SESSION_ID_NOT_FOUND
        assert call(b, sb, 3, [])[0] == kh.NONE
    finally:
        for c in (a, b, d, e):
            c.close()
    kh.assert_server_healthy(srv, topic)


def fetch_v13(cid, session_id, epoch, partitions, forgotten=()):
    """Fetch v13 (flexible, topic ids): partitions = [(topic_id bytes,
    partition, offset)], forgotten = [(topic_id, partition)]"""
    from kafka_primitives import uvarint

    def compact_array(items, encode):
        return uvarint(len(items) + 1) + b"".join(encode(x) for x in items)

    topics = {}
    for tid, p, offset in partitions:
        topics.setdefault(tid, []).append((p, offset))
    gone = {}
    for tid, p in forgotten:
        gone.setdefault(tid, []).append(p)
    body = i32(-1) + i32(0) + i32(1) + i32(50 * 1024 * 1024) + i8(0) + i32(session_id) + i32(epoch)
    body += compact_array(list(topics.items()), lambda t: t[0] + compact_array(
        t[1], lambda po: i32(po[0]) + i32(-1) + i64(po[1]) + i32(-1) + i64(-1)
        + i32(1024 * 1024) + uvarint(0)) + uvarint(0))
    body += compact_array(list(gone.items()), lambda t: t[0] + compact_array(t[1], i32) + uvarint(0))
    body += uvarint(1)          # rack_id ""
    body += uvarint(0)          # tagged fields
    return kh.request_frame(kh.FETCH, 13, cid, body, header_version=2)


def parse_fetch_v13(body):
    """(error, session_id, [(topic_id, partition, high_watermark, records)])"""
    r = kh.Reader(body)
    assert r.uvarint() == 0     # response header's tagged fields
    r.i32()                     # throttle_time_ms
    error = r.i16()
    session_id = r.i32()
    out = []
    for _ in range(r.uvarint() - 1):
        tid = r.take(16)
        for _ in range(r.uvarint() - 1):
            p = r.i32()
            r.i16()             # error
            hw = r.i64()
            r.i64()             # last stable offset
            r.i64()             # log start offset
            n = r.uvarint() - 1
            for _ in range(max(n, 0)):
                r.i64(), r.i64(), r.uvarint()
            r.i32()             # preferred read replica
            n = r.uvarint() - 1
            records = r.take(n) if n > 0 else b""
            for _ in range(r.uvarint()):   # partition tagged fields
                r.uvarint()
                r.take(r.uvarint())
            out.append((tid, p, hw, records))
        r.uvarint()             # topic tagged fields
    return error, session_id, out


def test_sessions_by_topic_id(make_server, unique_name):
    """v13+ sessions name topics by id; a session of one kind used with the
    other is FETCH_SESSION_TOPIC_ID_ERROR"""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("sessid")
    new_topic(conn, topic, 2)
    tid = srv.sql("SELECT topic_uuid FROM streamlog.topic WHERE name = %s", (topic,))[0][0].bytes
    produce(conn, topic, 1, 2)

    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, sid, parts = parse_fetch_v13(c.call(fetch_v13, 0, 0, [(tid, 0, 0), (tid, 1, 0)]))
        assert err == kh.NONE and sid != 0
        assert [(t, p, hw) for t, p, hw, _ in parts] == [(tid, 0, 0), (tid, 1, 2)]
        err, sid2, parts = parse_fetch_v13(c.call(fetch_v13, sid, 1, [(tid, 1, 2)]))
        assert (err, sid2, parts) == (kh.NONE, sid, [])
        produce(conn, topic, 0)
        err, _, parts = parse_fetch_v13(c.call(fetch_v13, sid, 2, []))
        assert err == kh.NONE
        assert [(t, p, hw) for t, p, hw, _ in parts] == [(tid, 0, 1)] and parts[0][3]

        # a v11 fetch (topic names) in this session
        assert call(c, sid, 3, []) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, {})
        # and a v13 one in a session made by names
        _, sid_names, _ = call(c, 0, 0, [(topic, 0, 0)])
        err, sid3, parts = parse_fetch_v13(c.call(fetch_v13, sid_names, 1, []))
        assert (err, sid3, parts) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, [])


def test_a_session_holds_no_more_partitions_than_the_server_may_have(make_server, unique_name):
    """streamlog.max_partitions bounds a session: a client cannot fill a
    worker's memory with partitions that cannot exist"""
    srv = make_server(conf={"streamlog.max_partitions": "16"})
    conn = srv.connect()
    topic = unique_name("sessbig")
    new_topic(conn, topic, 2)
    ghost = unique_name("ghost")   # no such topic: its partitions answer errors

    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, sid, parts = call(c, 0, 0, [(ghost, p, 0) for p in range(17)])
        assert (err, sid, len(parts)) == (kh.NONE, 0, 17)

        _, sid, _ = call(c, 0, 0, [(topic, 0, 0), (topic, 1, 0)] + [(ghost, p, 0) for p in range(8)])
        assert sid != 0
        # updating those it holds is fine
        assert call(c, sid, 1, [(topic, 0, 0), (ghost, 3, 0)])[0] == kh.NONE
        # 7 more would make 17
        err, _, parts = call(c, sid, 2, [(ghost, p, 0) for p in range(8, 15)])
        assert (err, parts) == (FETCH_SESSION_ID_NOT_FOUND, {})
        assert call(c, sid, 3, [])[0] == FETCH_SESSION_ID_NOT_FOUND
    kh.assert_server_healthy(srv, topic)


def test_evicted_sessions_give_their_memory_back(make_server, unique_name):
    """Sessions made and evicted over and over (every one stale at once:
    streamlog.fetch_session_eviction_ms = 0) leave the worker's memory where
    it was after the first rounds"""
    srv = make_server(conf={"streamlog.broker_workers": "1",
                            "streamlog.fetch_session_cache_slots": "4",
                            "streamlog.fetch_session_eviction_ms": "0"})
    conn = srv.connect()
    topic = unique_name("sesschurn")
    new_topic(conn, topic, 64)
    pid = kh.broker_pids(srv)[0]
    wanted = [(topic, p, 0) for p in range(64)]

    with kh.RawClient(srv.kafka_bootstrap) as c:
        ids = set()
        for _ in range(200):   # the allocator's pools are filled by now
            ids.add(call(c, 0, 0, wanted)[1])
        rss_before = kh.rss_kb(pid)
        for _ in range(2000):
            err, sid, parts = call(c, 0, 0, wanted)
            assert err == kh.NONE and sid != 0 and len(parts) == 64
            ids.add(sid)
        # each a new session, evicting the oldest of the 4
        assert len(ids) == 2200
        assert kh.rss_kb(pid) - rss_before < 8 * 1024, "evicted sessions kept their memory"
        # the last four are still there
        assert call(c, sid, 1, [])[0] == kh.NONE
