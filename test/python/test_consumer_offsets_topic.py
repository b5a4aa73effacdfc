"""Kafka's __consumer_offsets: the internal compacted topic that streamlog
writes in the same transaction as every committed offset and every change
of a Kafka group's metadata, Kafka groups and SQL groups alike.

The tests read it as a lag monitor does, with a real Kafka consumer
(confluent-kafka, and kafka-python) assigned to its partitions, and decode
every record with Kafka's schemas (OffsetCommitKey v1 / OffsetCommitValue
v3, GroupMetadataKey v2 / GroupMetadataValue v3; the decoder is written
here, from the schemas, independently of the server's encoder).  The
latest value of each key must match streamlog.group_offset (and
streamlog.consumer_lag) for every group and offset, and the group metadata
the members and assignment the clients used.
"""

import struct
import threading
import time

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import kafka_helpers as kh
from pgserver import wait_until
from test_internal_topics import metadata_v4_request, parse_metadata_v4
from test_kafka_groups import (delete_groups_v1, offset_delete_v0, parse_delete_groups_v1,
                               parse_offset_delete_v0)

TIMEOUT = 60
OFFSETS = "__consumer_offsets"
GROUP_CONF = {"streamlog.group_initial_rebalance_delay": 300}


# -- Kafka's schemas, decoded ----------------------------------------------------------

class Buf:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def string(self, nullable=False):
        n = self.i16()
        if n < 0:
            assert nullable, "null in a non-nullable string"
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes_(self):
        n = self.i32()
        assert n >= 0
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def end(self):
        assert self.pos == len(self.data), "trailing bytes"


def decode_key(key):
    """('offset', group, topic, partition) or ('group', group)."""
    b = Buf(key)
    version = b.i16()
    if version in (0, 1):
        k = ("offset", b.string(), b.string(), b.i32())
    elif version == 2:
        k = ("group", b.string())
    else:
        raise AssertionError(f"unknown key version {version}")
    b.end()
    return k


def decode_offset_value(value):
    b = Buf(value)
    assert b.i16() == 3, "OffsetCommitValue v3, as Kafka 3.9 writes"
    v = {"offset": b.i64(), "leader_epoch": b.i32(), "metadata": b.string(),
         "commit_timestamp": b.i64()}
    b.end()
    return v


def decode_group_value(value):
    b = Buf(value)
    assert b.i16() == 3, "GroupMetadataValue v3, as Kafka 3.9 writes"
    v = {"protocol_type": b.string(), "generation": b.i32(),
         "protocol": b.string(True), "leader": b.string(True),
         "current_state_timestamp": b.i64(), "members": []}
    for _ in range(b.i32()):
        v["members"].append({
            "member_id": b.string(), "group_instance_id": b.string(True),
            "client_id": b.string(), "client_host": b.string(),
            "rebalance_timeout": b.i32(), "session_timeout": b.i32(),
            "subscription": b.bytes_(), "assignment": b.bytes_()})
    b.end()
    return v


def decode_assignment(data):
    """ConsumerProtocolAssignment: {topic: [partitions]}."""
    b = Buf(data)
    b.i16()  # version
    out = {}
    for _ in range(b.i32()):
        topic = b.string()
        out[topic] = sorted(b.i32() for _ in range(b.i32()))
    return out


def java_hash(s):
    h = 0
    u = s.encode("utf-16-be")
    for i in range(0, len(u), 2):
        h = (h * 31 + int.from_bytes(u[i:i + 2], "big")) & 0xffffffff
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group, n=50):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % n


# -- reading the topic -----------------------------------------------------------------

def offsets_topic_end(srv):
    """{partition: high watermark} of __consumer_offsets ({} if it does not exist)."""
    rows = srv.sql(
        "SELECT p.partition, s.high_watermark FROM streamlog.topic t "
        "JOIN streamlog.partition p USING (topic_id) "
        "CROSS JOIN LATERAL streamlog.partition_state(t.topic_id, p.partition) s "
        "WHERE t.name = %s", (OFFSETS,))
    return {p: hwm for p, hwm in rows}


def read_offsets_topic(srv, conf=None):
    """Every record of __consumer_offsets up to its high watermarks, read by
    a confluent-kafka consumer assigned to every partition:
    [(partition, offset, key bytes, value bytes or None)]."""
    end = offsets_topic_end(srv)
    assert end, "__consumer_offsets does not exist"
    c = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "offsets-reader",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  **(conf or {})})
    try:
        c.assign([TopicPartition(OFFSETS, p, 0) for p in end])
        got = []
        pos = {p: 0 for p in end}
        deadline = time.monotonic() + TIMEOUT
        while any(pos[p] < end[p] for p in end):
            assert time.monotonic() < deadline, f"read {pos}, want {end}"
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append((m.partition(), m.offset(), m.key(), m.value()))
            pos[m.partition()] = m.offset() + 1
        return got
    finally:
        c.close()


def latest_per_key(records):
    """{decoded key: decoded value or None (tombstone)}, checking that each
    record is in its group's partition."""
    latest = {}
    for partition, _offset, key, value in sorted(records, key=lambda r: (r[0], r[1])):
        k = decode_key(key)
        assert partition == partition_for(k[1]), f"{k} in partition {partition}"
        if value is None:
            latest[k] = None
        elif k[0] == "offset":
            latest[k] = decode_offset_value(value)
        else:
            latest[k] = decode_group_value(value)
    return latest


def committed_offsets(srv):
    """{('offset', group, topic, partition): (offset, leader_epoch, metadata, ms)}
    as streamlog.group_offset holds them."""
    rows = srv.sql(
        "SELECT o.group_id, t.name, o.partition, o.committed_offset, o.leader_epoch, "
        "coalesce(o.metadata, ''), "
        "(extract(epoch FROM o.committed_at) * 1000)::int8 "
        "FROM streamlog.group_offset o JOIN streamlog.topic t USING (topic_id)")
    return {("offset", g, t, p): (o, e, m, ms) for g, t, p, o, e, m, ms in rows}


def live_offsets(latest):
    return {k: (v["offset"], v["leader_epoch"], v["metadata"], v["commit_timestamp"])
            for k, v in latest.items() if k[0] == "offset" and v is not None}


def assert_topic_matches_table(srv, latest, check_times=True):
    table = committed_offsets(srv)
    topic = live_offsets(latest)
    assert topic.keys() == table.keys()
    for k in table:
        o, e, m, ms = table[k]
        to, te, tm, tms = topic[k]
        assert (to, te, tm) == (o, e, m), k
        # committed_at has microseconds, the record milliseconds
        assert not check_times or abs(tms - ms) <= 1, k
    # and what streamlog.consumer_lag shows
    lag = {("offset", g, t, p): o for g, t, p, o in srv.sql(
        "SELECT group_id, topic, partition, committed_offset FROM streamlog.consumer_lag")}
    assert lag == {k: v[0] for k, v in topic.items()}


def produce_sql(srv, topic, n, partitions):
    with srv.connect() as c:
        for i in range(n):
            c.execute("SELECT streamlog.produce(%s, %s, %s, partition => %s)",
                      (topic, f"k{i}", f"v{i}", i % partitions))


def kafka_consumer(srv, group, client_id, **extra):
    return Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": group,
                     "client.id": client_id, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, **extra})


def consume_n(c, n):
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < n:
        assert time.monotonic() < deadline, f"consumed {len(got)} of {n}"
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m)
    return got


# -- tests -----------------------------------------------------------------------------

def test_topic_created_on_first_commit_internal_and_compacted(make_server, unique_name):
    srv = make_server()
    topic = unique_name("first")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    assert offsets_topic_end(srv) == {}, "no commit yet, no topic"
    srv.sql("SELECT streamlog.seek('g1', %s, 0, 0)", (topic,))
    (count, config, owner), = srv.sql(
        "SELECT partition_count, config, owner::regrole::text FROM streamlog.topic "
        "WHERE name = %s", (OFFSETS,))
    assert count == 50
    assert config["cleanup.policy"] == "compact"
    assert config["compression.type"] == "producer"
    assert config["segment.bytes"] == "104857600"
    # the bootstrap superuser's, not that of whoever committed first
    (boot,), = srv.sql("SELECT rolname FROM pg_authid WHERE oid = 10")
    assert owner == boot
    # Kafka's Metadata marks it internal
    with kh.RawClient(srv.kafka_bootstrap) as x:
        md = parse_metadata_v4(x.call(metadata_v4_request, [OFFSETS], False))
    assert md[OFFSETS] == (0, True, 50)
    # ListOffsets: the group's partition holds its one record
    c = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "wm"})
    try:
        assert c.get_watermark_offsets(TopicPartition(OFFSETS, partition_for("g1")),
                                       timeout=TIMEOUT) == (0, 1)
        assert c.get_watermark_offsets(TopicPartition(OFFSETS, (partition_for("g1") + 1) % 50),
                                       timeout=TIMEOUT) == (0, 0)
    finally:
        c.close()


def test_offsets_expiry_creates_no_topic_without_commits(make_server, unique_name):
    """The cleaner's passes that expire committed offsets (every 100 ms
    here) leave __consumer_offsets uncreated while nothing was committed:
    the first pass after CREATE EXTENSION created it, which
    drop_all_topics() then left behind (it leaves internal topics to DROP
    EXTENSION).  Five rolls of a topic's segment, each by a round of the
    cleaner, take longer than the expiry interval."""
    from compaction_model import Rec, create_topic, now_ms, sql_produce, wait_all_rolled
    srv = make_server(conf={"streamlog.retention_check_interval": 100,
                            "streamlog.offsets_retention_check_interval": 100})
    conn = srv.connect()
    topic = unique_name("rolling")
    create_topic(conn, topic, 1, {"segment.bytes": 14})
    for i in range(5):
        sql_produce(conn, topic, [Rec("k", f"v{i}", (), now_ms())])
        wait_all_rolled(conn, topic)
    assert offsets_topic_end(srv) == {}, "__consumer_offsets without a commit"
    conn.close()
    srv.sql("SELECT streamlog.seek('g1', %s, 0, 0)", (topic,))
    assert offsets_topic_end(srv) != {}, "no __consumer_offsets after a commit"


def test_num_partitions_setting(make_server, unique_name):
    srv = make_server(conf={"streamlog.offsets_topic_num_partitions": 3})
    topic = unique_name("np")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.seek('g', %s, 0, 0)", (topic,))
    assert len(offsets_topic_end(srv)) == 3
    latest = latest_per_key_n(read_offsets_topic(srv), 3)
    assert live_offsets(latest).keys() == {("offset", "g", topic, 0)}


def latest_per_key_n(records, n):
    latest = {}
    for partition, _offset, key, value in sorted(records, key=lambda r: (r[0], r[1])):
        k = decode_key(key)
        assert partition == partition_for(k[1], n)
        latest[k] = None if value is None else decode_offset_value(value)
    return latest


def test_kafka_and_sql_groups_match_the_table(make_server, unique_name):
    srv = make_server(conf=GROUP_CONF)
    topic = unique_name("orders")
    srv.sql("SELECT streamlog.create_topic(%s, 3)", (topic,))
    produce_sql(srv, topic, 30, 3)

    # An SQL group: consume() twice, one seek(), one reset_offsets()
    srv.sql("SELECT count(*) FROM streamlog.consume('sql-group', %s, 7)", (topic,))
    srv.sql("SELECT count(*) FROM streamlog.consume('sql-group', %s, 7)", (topic,))
    srv.sql("SELECT streamlog.seek('sql-seek', %s, 1, 4)", (topic,))
    srv.sql("SELECT * FROM streamlog.reset_offsets('sql-reset', %s, 'latest')", (topic,))

    # A Kafka group
    c = kafka_consumer(srv, "kafka-group", "ck-client")
    c.subscribe([topic])
    consume_n(c, 30)
    c.commit(asynchronous=False)
    try:
        latest = latest_per_key(read_offsets_topic(srv))
        assert_topic_matches_table(srv, latest)
        groups = {k[1] for k in live_offsets(latest)}
        assert groups == {"sql-group", "sql-seek", "sql-reset", "kafka-group"}

        # The Kafka group's metadata: its one member and the assignment it got
        g = latest[("group", "kafka-group")]
        assert g["protocol_type"] == "consumer"
        assert g["protocol"] in ("range", "roundrobin", "cooperative-sticky")
        (member,) = g["members"]
        assert member["client_id"] == "ck-client"
        assert g["leader"] == member["member_id"]
        assert member["session_timeout"] == 6000
        assert decode_assignment(member["assignment"]) == {topic: [0, 1, 2]}
        (desc,) = srv.sql("SELECT member_id, generation FROM streamlog.kafka_group_members() m "
                          "JOIN streamlog.kafka_groups() g USING (group_id) "
                          "WHERE group_id = 'kafka-group'")
        assert member["member_id"] == desc[0] and g["generation"] == desc[1]
        # SQL groups have no group metadata
        assert ("group", "sql-group") not in latest
    finally:
        c.close()

    # The member left: the group is empty, and Kafka stores that too
    def empty_stored():
        v = latest_per_key(read_offsets_topic(srv)).get(("group", "kafka-group"))
        return v is not None and v["members"] == [] and v
    g = wait_until(empty_stored, TIMEOUT, "the empty group's metadata")
    assert g["protocol"] is None and g["leader"] is None


def test_kafka_python_commits_metadata_and_reads_it(make_server, unique_name):
    """A Kafka commit is the first use here: the broker answers
    COORDINATOR_LOAD_IN_PROGRESS while the topic is created, and the client's
    retry stores it."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    srv = make_server()
    topic = unique_name("kp")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    committer = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, group_id="kp-group",
                              enable_auto_commit=False, api_version=(2, 5))
    committer.commit({KTP(topic, 0): OffsetAndMetadata(0, "hello")})
    committer.close()
    end = offsets_topic_end(srv)
    p = partition_for("kp-group")
    assert end[p] == 1
    c = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, enable_auto_commit=False,
                      exclude_internal_topics=False, api_version=(2, 5))
    try:
        c.assign([KTP(OFFSETS, p)])
        c.seek(KTP(OFFSETS, p), 0)
        batch = {}
        deadline = time.monotonic() + TIMEOUT
        while not batch:
            assert time.monotonic() < deadline
            batch = c.poll(timeout_ms=500)
        (rec,) = [r for recs in batch.values() for r in recs]
        assert decode_key(rec.key) == ("offset", "kp-group", topic, 0)
        value = decode_offset_value(rec.value)
        assert value["offset"] == 0 and value["metadata"] == "hello"
    finally:
        c.close()


def test_rolled_back_consume_leaves_no_record(make_server, unique_name):
    srv = make_server()
    topic = unique_name("rb")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce_sql(srv, topic, 5, 1)
    srv.sql("SELECT count(*) FROM streamlog.consume('rb-group', %s, 2)", (topic,))
    before = offsets_topic_end(srv)
    with srv.connect(autocommit=False) as c:
        assert c.execute("SELECT count(*) FROM streamlog.consume('rb-group', %s, 2)",
                         (topic,)).fetchone()[0] == 2
        c.execute("SELECT streamlog.seek('rb-other', %s, 0, 1)", (topic,))
        c.rollback()
    assert offsets_topic_end(srv) == before
    latest = latest_per_key(read_offsets_topic(srv))
    assert_topic_matches_table(srv, latest)
    assert latest[("offset", "rb-group", topic, 0)]["offset"] == 2


def test_concurrent_first_commits_neither_waits(make_server, unique_name):
    """The first commits create the topic in a worker of their own: two open
    transactions that both find no topic do not wait on each other."""
    srv = make_server()
    topic = unique_name("race")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    a = srv.connect(autocommit=False)
    b = srv.connect(autocommit=False)
    try:
        a.execute("SET lock_timeout = '20s'")
        b.execute("SET lock_timeout = '20s'")
        a.execute("SELECT streamlog.seek('race-a', %s, 0, 0)", (topic,))
        # a is still open: b gets through without waiting for it
        b.execute("SELECT streamlog.seek('race-b', %s, 1, 0)", (topic,))
        b.commit()
        a.commit()
    finally:
        a.close()
        b.close()
    (n,), = srv.sql("SELECT count(*) FROM streamlog.topic WHERE name = %s", (OFFSETS,))
    assert n == 1
    latest = latest_per_key(read_offsets_topic(srv))
    assert_topic_matches_table(srv, latest)
    assert len(live_offsets(latest)) == 2


def test_first_commit_rolled_back_leaves_the_topic_without_its_record(make_server, unique_name):
    srv = make_server()
    topic = unique_name("rbt")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    with srv.connect(autocommit=False) as c:
        c.execute("SELECT streamlog.seek('g', %s, 0, 0)", (topic,))
        c.rollback()
    end = offsets_topic_end(srv)
    assert len(end) == 50 and sum(end.values()) == 0
    srv.sql("SELECT streamlog.seek('g', %s, 0, 0)", (topic,))
    assert sum(offsets_topic_end(srv).values()) == 1


def test_tombstones_after_delete_group_and_delete_groups(make_server, unique_name):
    srv = make_server(conf=GROUP_CONF)
    topic = unique_name("tomb")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    produce_sql(srv, topic, 10, 2)
    srv.sql("SELECT count(*) FROM streamlog.consume('sql-del', %s, 10)", (topic,))
    srv.sql("SELECT streamlog.delete_group('sql-del')")

    c = kafka_consumer(srv, "kafka-del", "del-client")
    c.subscribe([topic])
    consume_n(c, 10)
    c.commit(asynchronous=False)
    c.close()
    with kh.RawClient(srv.kafka_bootstrap) as x:
        def deleted():
            return parse_delete_groups_v1(x.call(delete_groups_v1, ["kafka-del"])) == \
                {"kafka-del": 0}
        wait_until(deleted, TIMEOUT, "DeleteGroups to succeed once the group is empty")

    latest = latest_per_key(read_offsets_topic(srv))
    for g in ("sql-del", "kafka-del"):
        keys = [k for k in latest if k[1] == g]
        assert ("offset", g, topic, 0) in keys and ("offset", g, topic, 1) in keys
        assert all(latest[k] is None for k in keys), f"{g}: {latest}"
    assert latest[("group", "kafka-del")] is None
    assert_topic_matches_table(srv, latest)


def test_offset_delete_and_negative_commit_tombstone_one_partition(make_server, unique_name):
    srv = make_server(conf=GROUP_CONF)
    topic = unique_name("od")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    srv.sql("SELECT streamlog.seek('od-group', %s, 0, 0)", (topic,))
    srv.sql("SELECT streamlog.seek('od-group', %s, 1, 0)", (topic,))
    with kh.RawClient(srv.kafka_bootstrap) as x:
        assert parse_offset_delete_v0(x.call(offset_delete_v0, "od-group", topic, [1])) == \
            (0, {1: 0})
    latest = latest_per_key(read_offsets_topic(srv))
    assert latest[("offset", "od-group", topic, 1)] is None
    assert latest[("offset", "od-group", topic, 0)]["offset"] == 0
    assert_topic_matches_table(srv, latest)


def test_expiry_writes_tombstones_and_keeps_groups_with_members(make_server, unique_name):
    srv = make_server(conf={**GROUP_CONF,
                            "streamlog.offsets_retention_minutes": 60,
                            "streamlog.offsets_retention_check_interval": 200,
                            "streamlog.retention_check_interval": 200})
    topic = unique_name("exp")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce_sql(srv, topic, 4, 1)
    srv.sql("SELECT streamlog.seek('old-sql', %s, 0, 1)", (topic,))
    srv.sql("SELECT streamlog.seek('new-sql', %s, 0, 2)", (topic,))
    c = kafka_consumer(srv, "live-kafka", "live")
    c.subscribe([topic])
    try:
        consume_n(c, 4)
        c.commit(asynchronous=False)
        # Two of them committed long ago; the Kafka group still has its member
        srv.sql("UPDATE streamlog.group_offset SET committed_at = now() - interval '2 hours' "
                "WHERE group_id IN ('old-sql', 'live-kafka')")
        wait_until(lambda: srv.sql("SELECT count(*) FROM streamlog.group_offset "
                                   "WHERE group_id = 'old-sql'")[0][0] == 0,
                   TIMEOUT, "the old SQL group's offsets to expire")
        assert {g for (g,) in srv.sql("SELECT group_id FROM streamlog.group_offset")} == \
            {"new-sql", "live-kafka"}
        latest = latest_per_key(read_offsets_topic(srv))
        assert latest[("offset", "old-sql", topic, 0)] is None
        assert latest[("group", "old-sql")] is None
        # (the test moved committed_at back by hand, behind the topic's back)
        assert_topic_matches_table(srv, latest, check_times=False)
    finally:
        c.close()


def test_off_switch(make_server, unique_name):
    srv = make_server(conf={"streamlog.offsets_topic": "off"})
    topic = unique_name("off")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.seek('g', %s, 0, 0)", (topic,))
    assert offsets_topic_end(srv) == {}


def test_who_may_read_it(make_server, unique_name):
    srv = make_server()
    topic = unique_name("priv")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.seek('g', %s, 0, 0)", (topic,))
    srv.sql("CREATE ROLE reader LOGIN")
    srv.sql("CREATE ROLE monitor LOGIN")
    srv.sql("CREATE ROLE lagwatch LOGIN")
    srv.sql("GRANT streamlog_admin TO monitor")
    # As in Kafka: READ on the topic through an ACL
    srv.sql("SELECT streamlog.grant('read', 'topic', %s, 'lagwatch')", (OFFSETS,))
    p = partition_for("g")
    for role, allowed in (("reader", False), ("monitor", True), ("lagwatch", True)):
        with psycopg.connect(host=srv.host, port=srv.port, user=role, dbname="postgres",
                             autocommit=True) as c:
            if allowed:
                assert c.execute("SELECT count(*) FROM streamlog.read(%s, %s)",
                                 (OFFSETS, p)).fetchone()[0] == 1
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    c.execute("SELECT count(*) FROM streamlog.read(%s, %s)", (OFFSETS, p))
    # clients cannot write to it
    with pytest.raises(psycopg.Error, match="reserved for internal topics"):
        srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (OFFSETS,))


def test_dropped_topic_leaves_tombstones_of_its_offsets(make_server, unique_name):
    """As Kafka cleans up the offsets of deleted partitions: dropping a topic
    deletes every group's offsets of it, with their tombstones."""
    srv = make_server()
    gone = unique_name("gone")
    kept = unique_name("kept")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (gone,))
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (kept,))
    for g in ("d1", "d2"):
        srv.sql("SELECT streamlog.seek(%s, %s, 0, 0)", (g, gone))
        srv.sql("SELECT streamlog.seek(%s, %s, 1, 0)", (g, gone))
    srv.sql("SELECT streamlog.seek('d1', %s, 0, 0)", (kept,))
    srv.sql("SELECT streamlog.drop_topic(%s)", (gone,))
    latest = latest_per_key(read_offsets_topic(srv))
    for g in ("d1", "d2"):
        for p in (0, 1):
            assert latest[("offset", g, gone, p)] is None
    assert latest[("offset", "d1", kept, 0)]["offset"] == 0
    assert_topic_matches_table(srv, latest)


def test_empty_kafka_group_expires_whole_and_is_forgotten(make_server, unique_name):
    """KIP-211: a Kafka consumer group's offsets expire once the group has
    been Empty for offsets.retention.minutes (1, the least Kafka allows:
    this test waits that long), all of them, and the group goes with its
    metadata; a group with a member keeps its offsets however old."""
    srv = make_server(conf={**GROUP_CONF,
                            "streamlog.offsets_retention_minutes": 1,
                            "streamlog.offsets_retention_check_interval": 500,
                            "streamlog.retention_check_interval": 500})
    topic = unique_name("kexp")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    produce_sql(srv, topic, 4, 2)
    live = kafka_consumer(srv, "kexp-live", "live")
    live.subscribe([topic])
    try:
        consume_n(live, 4)
        live.commit(asynchronous=False)
        gone = kafka_consumer(srv, "kexp-gone", "gone")
        gone.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        consume_n(gone, 4)
        gone.commit(asynchronous=False)
        gone.close()
        # Both committed a day ago, as far as the table says.  kexp-gone
        # committed without joining: a standalone group, whose offsets
        # expire one by one by commit time; kexp-live keeps its own, having
        # a member, through the same pass
        srv.sql("UPDATE streamlog.group_offset SET committed_at = now() - interval '1 day' "
                "WHERE group_id IN ('kexp-live', 'kexp-gone')")
        wait_until(lambda: srv.sql("SELECT count(*) FROM streamlog.group_offset "
                                   "WHERE group_id = 'kexp-gone'")[0][0] == 0,
                   TIMEOUT, "the standalone group's offsets to expire")
        assert srv.sql("SELECT count(*) FROM streamlog.group_offset "
                       "WHERE group_id = 'kexp-live'")[0][0] == 2
    finally:
        live.close()
    # Now kexp-live is Empty: a minute later it goes, offsets and metadata
    wait_until(lambda: srv.sql("SELECT count(*) FROM streamlog.group_offset "
                               "WHERE group_id = 'kexp-live'")[0][0] == 0,
               180, "the empty Kafka group's offsets to expire")
    wait_until(lambda: not srv.sql("SELECT 1 FROM streamlog.kafka_groups() "
                                   "WHERE group_id = 'kexp-live'"),
               TIMEOUT, "the coordinator to forget the expired group")
    latest = latest_per_key(read_offsets_topic(srv))
    for g in ("kexp-live", "kexp-gone"):
        for p in (0, 1):
            assert latest[("offset", g, topic, p)] is None
    assert latest[("group", "kexp-live")] is None
    assert_topic_matches_table(srv, latest, check_times=False)


def test_table_and_topic_agree_after_kill9(make_server, unique_name):
    """Commits under way when the server is killed with SIGKILL: after the
    restart, the latest record of each key is the table's row, for every
    offset that survived, and the topic takes commits again."""
    srv = make_server()
    topic = unique_name("crash")
    srv.sql("SELECT streamlog.create_topic(%s, 4)", (topic,))
    produce_sql(srv, topic, 400, 4)
    stop = threading.Event()
    errors = []

    def consumer(i):
        try:
            with srv.connect() as c:
                while not stop.is_set():
                    c.execute("SELECT count(*) FROM streamlog.consume(%s, %s, 3)",
                              (f"crash-{i % 2}", topic))
                    c.execute("SELECT streamlog.seek(%s, %s, %s, %s)",
                              (f"crash-seek-{i}", topic, i % 4, int(time.time() * 1000) % 100))
        except psycopg.Error as e:
            errors.append(e)

    threads = [threading.Thread(target=consumer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(offsets_topic_end(srv).values()) > 200, TIMEOUT,
               "commits under way")
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
    assert errors, "the consumers saw the server go"
    srv.start()
    latest = latest_per_key(read_offsets_topic(srv))
    assert_topic_matches_table(srv, latest)
    srv.sql("SELECT streamlog.seek('after-crash', %s, 0, 1)", (topic,))
    latest = latest_per_key(read_offsets_topic(srv))
    assert latest[("offset", "after-crash", topic, 0)]["offset"] == 1
    assert_topic_matches_table(srv, latest)


def test_kafka_readers_need_read_on_the_topic(make_server, unique_name):
    """Through the Kafka door the same rule holds: Metadata answers
    TOPIC_AUTHORIZATION_FAILED for __consumer_offsets to a client whose role
    was granted nothing on it, and a consumer reads it once the role is
    granted READ on the topic by an ACL."""
    from confluent_kafka import KafkaError

    srv = make_server(conf={"streamlog.anonymous_role": "offsets_anon"})
    srv.sql("CREATE ROLE offsets_anon LOGIN")
    # librdkafka looks up its group's coordinator even for an assign()
    srv.sql("SELECT streamlog.grant('read', 'group', 'kpriv-reader', 'offsets_anon')")
    topic = unique_name("kpriv")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.seek('kpriv-group', %s, 0, 0)", (topic,))
    p = partition_for("kpriv-group")

    def first_event():
        c = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "kpriv-reader",
                      "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(OFFSETS, p, 0)])
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    return m
            pytest.fail("no record and no error")
        finally:
            c.close()

    def metadata_error():
        with kh.RawClient(srv.kafka_bootstrap) as x:
            return parse_metadata_v4(x.call(metadata_v4_request, [OFFSETS], False))[OFFSETS][0]

    assert metadata_error() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    srv.sql("SELECT streamlog.grant('read', 'topic', %s, 'offsets_anon')", (OFFSETS,))
    assert metadata_error() == 0
    m = first_event()
    assert m.error() is None, m.error()
    assert decode_key(m.key()) == ("offset", "kpriv-group", topic, 0)


def test_group_metadata_has_every_member_and_its_assignment(make_server, unique_name):
    """Two members: the stored GroupMetadataValue names both, with the
    client ids, subscriptions and the partitions each client was given."""
    srv = make_server(conf=GROUP_CONF)
    topic = unique_name("two")
    srv.sql("SELECT streamlog.create_topic(%s, 4)", (topic,))
    cs = {name: kafka_consumer(srv, "two-members", name) for name in ("member-a", "member-b")}
    try:
        for c in cs.values():
            c.subscribe([topic])

        def settled():
            for c in cs.values():
                c.poll(0.2)
            got = {name: sorted(tp.partition for tp in c.assignment()) for name, c in cs.items()}
            return (all(got.values()) and sorted(sum(got.values(), [])) == [0, 1, 2, 3]
                    and got)
        assigned = wait_until(settled, TIMEOUT, "both members to get their partitions")

        def stored():
            v = latest_per_key(read_offsets_topic(srv)).get(("group", "two-members"))
            if v is None or len(v["members"]) != 2:
                return None
            mine = {m["client_id"]: decode_assignment(m["assignment"]).get(topic, [])
                    for m in v["members"]}
            return mine == assigned and v
        # (no commit here: the leader's SyncGroup created the topic)
        v = wait_until(stored, TIMEOUT, "the group's metadata with both assignments")
        assert v["leader"] in {m["member_id"] for m in v["members"]}
        for m in v["members"]:
            # ConsumerProtocolSubscription: version, then the topics
            b = Buf(m["subscription"])
            b.i16()
            assert [b.string() for _ in range(b.i32())] == [topic]
            assert m["group_instance_id"] is None
            assert m["rebalance_timeout"] > 0 and m["session_timeout"] == 6000
    finally:
        for c in cs.values():
            c.close()


def test_first_commits_share_one_free_worker_slot(make_server, unique_name):
    """Concurrent first commits each start a worker to create the topic; with
    one worker slot free (the cleaner, two brokers and PostgreSQL's logical
    replication launcher take four), those that find no slot wait for the
    others' topic instead of failing."""
    srv = make_server(conf={"max_worker_processes": 5})
    topic = unique_name("slots")
    srv.sql("SELECT streamlog.create_topic(%s, 4)", (topic,))
    conns = [srv.connect() for _ in range(6)]
    errors = []
    barrier = threading.Barrier(len(conns))

    def commit(i):
        try:
            barrier.wait()
            conns[i].execute("SELECT streamlog.seek(%s, %s, %s, 0)", (f"slot-{i}", topic, i % 4))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    for c in conns:
        c.close()
    assert not errors, errors
    latest = latest_per_key(read_offsets_topic(srv))
    assert len(live_offsets(latest)) == 6
    assert_topic_matches_table(srv, latest)
