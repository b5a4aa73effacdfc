"""Topics as tables: streamlog.latest(topic) is the current value of every
key, streamlog.latest(topic, key) the current record of one, with or
without the topic's key index (key.index), whichever door the records came
through; compacted topics refuse records without a key, as Kafka does."""

import random

import confluent_kafka
import psycopg
import pytest
from psycopg.types.json import Jsonb

import kafka_helpers as kh
from kafka_helpers import i16, i32
from pgserver import wait_until

INVALID_RECORD = 87


def create_topic(conn, topic, partitions=1, config=None):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config or {})))


def alter_topic(conn, topic, config):
    conn.execute("SELECT streamlog.alter_topic(%s, %s)", (topic, Jsonb(config)))


def produce(conn, topic, partition, key, value, ts_ms=None):
    conn.execute("SELECT streamlog.produce_record(%s, %s, %s, partition => %s, "
                 "ts => to_timestamp(%s / 1000.0))",
                 (topic, key, value, partition, ts_ms))


def table(conn, topic):
    """{key: (partition, offset, value)} of streamlog.latest(topic)"""
    out = {}
    for p, off, k, v in conn.execute(
            'SELECT partition, "offset", key, value FROM streamlog.latest(%s)', (topic,)):
        assert bytes(k) not in out, "a key twice"
        out[bytes(k)] = (p, off, bytes(v))
    return out


def lookup(conn, topic, key, partition=None):
    """(partition, offset, value) of streamlog.latest(topic, key), or None"""
    rows = conn.execute('SELECT partition, "offset", value FROM streamlog.latest(%s, %s::bytea, %s)',
                        (topic, key, partition)).fetchall()
    assert len(rows) <= 1
    return None if not rows else (rows[0][0], rows[0][1], bytes(rows[0][2]))


def key_index_rows(conn, topic):
    """Entries of the topic's key index, None if it has none"""
    relname = conn.execute(
        "SELECT format('streamlog_data.t%%s_keys', topic_id) FROM streamlog.topic WHERE name = %s",
        (topic,)).fetchone()[0]
    if conn.execute("SELECT to_regclass(%s)", (relname,)).fetchone()[0] is None:
        return None
    return conn.execute(f"SELECT count(*) FROM {relname}").fetchone()[0]


class Model:
    """The current record of each key, as the rules say: within a partition
    the highest offset, across partitions the newest timestamp (then the
    higher partition); a tombstone or no record means absent."""

    def __init__(self):
        self.per_partition = {}     # (key, partition) -> (offset, ts, value)
        self.next_offset = {}

    def add(self, partition, key, value, ts):
        off = self.next_offset.get(partition, 0)
        self.next_offset[partition] = off + 1
        if key is not None:
            self.per_partition[(key, partition)] = (off, ts, value)

    def current(self, key):
        best = None
        for (k, p), (off, ts, value) in self.per_partition.items():
            if k != key:
                continue
            if best is None or (ts, p) > (best[3], best[0]):
                best = (p, off, value, ts)
        if best is None or best[2] is None:
            return None
        return best[:3]

    def keys(self):
        return {k for k, _ in self.per_partition}

    def table(self):
        out = {}
        for k in self.keys():
            cur = self.current(k)
            if cur is not None:
                out[k] = cur
        return out


def random_history(conn, topic, model, n, partitions, keys, rng, keyless=True):
    """n records in a few transactions: random keys over every partition
    (as a custom partitioner would put them), tombstones, keyless records"""
    base_ts = kh.now_ms() - 60_000     # recent: retention keeps them
    with conn.transaction():
        for i in range(n):
            p = rng.randrange(partitions)
            key = None if keyless and rng.random() < 0.05 else f"k{rng.randrange(keys)}".encode()
            value = None if key is not None and rng.random() < 0.15 else f"v{i}".encode()
            ts = base_ts + rng.randrange(1000)
            produce(conn, topic, p, key, value, ts)
            model.add(p, key, value, ts)


def check_against(conn, topic, model, keys, with_partitions=True):
    assert table(conn, topic) == model.table()
    for k in range(keys + 2):    # two keys that never were
        key = f"k{k}".encode()
        assert lookup(conn, topic, key) == model.current(key), key
    if with_partitions:
        # partition given: that partition's current record only
        for (key, p), (off, _ts, value) in list(model.per_partition.items())[:50]:
            assert lookup(conn, topic, key, p) == (None if value is None else (p, off, value))


# -- keys required on compacted topics --------------------------------------------

def test_sql_produce_of_a_keyless_record_to_a_compacted_topic_fails(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    compacted = unique_name("compacted")
    both = unique_name("compact_delete")
    plain = unique_name("plain")
    create_topic(conn, compacted, 1, {"cleanup.policy": "compact"})
    create_topic(conn, both, 1, {"cleanup.policy": "compact,delete"})
    create_topic(conn, plain, 1)

    for topic in (compacted, both):
        for call in ("SELECT streamlog.produce(%s, NULL, 'v')",
                     "SELECT streamlog.produce(%s, NULL::bytea, 'v'::bytea)",
                     "SELECT streamlog.produce_record(%s, NULL, 'v'::bytea)"):
            with pytest.raises(psycopg.Error) as exc:
                conn.execute(call, (topic,))
            assert exc.value.sqlstate == "22004"
            assert topic in exc.value.diag.message_primary
            assert "without a key" in exc.value.diag.message_primary
            assert "key" in exc.value.diag.message_hint
        # a key, even empty, and tombstones are fine
        conn.execute("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
        conn.execute("SELECT streamlog.produce(%s, '', 'v')", (topic,))
        conn.execute("SELECT streamlog.produce_record(%s, 'k'::bytea, NULL)", (topic,))
        assert kh.high_watermark(srv, topic) == 3

    conn.execute("SELECT streamlog.produce(%s, NULL, 'v')", (plain,))
    # a topic turned compacted refuses them from then on
    alter_topic(conn, plain, {"cleanup.policy": "compact"})
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT streamlog.produce(%s, NULL, 'v')", (plain,))
    assert exc.value.sqlstate == "22004"
    assert kh.high_watermark(srv, plain) == 1


def produce_v8_errors(body):
    """{(topic, partition): (error_code, [(batch_index, message)], message)}"""
    r = kh.Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
            r.array(lambda r: (r.i32(), r.string())), r.string())))):
        for p, err, _base, _append_time, _log_start, record_errors, message in parts:
            out[(topic, p)] = (err, record_errors, message)
    return out


def test_kafka_produce_of_keyless_records_to_a_compacted_topic_fails(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("compacted")
    create_topic(conn, topic, 2, {"cleanup.policy": "compact"})
    now = kh.now_ms()

    with kh.RawClient(srv.kafka_bootstrap) as c:
        batch = kh.record_batch([(b"a", b"1", [], now), (None, b"2", [], now),
                                 (b"b", b"3", [], now), (None, b"4", [], now)])
        err, record_errors, message = produce_v8_errors(
            c.call(kh.produce_v8_request, topic, 1, batch))[(topic, 1)]
        assert err == INVALID_RECORD
        expected = f"Compacted topic cannot accept message without key in topic partition {topic}-1."
        assert record_errors == [(1, expected), (3, expected)]
        assert expected in message
        # compressed batches are checked record by record too
        gz = kh.record_batch([(None, b"x", [], now)], compression=kh.COMPRESSION_GZIP)
        err, record_errors, _ = produce_v8_errors(
            c.call(kh.produce_v8_request, topic, 0, gz))[(topic, 0)]
        assert (err, [i for i, _ in record_errors]) == (INVALID_RECORD, [0])
        # older versions carry the error code alone
        assert kh.parse_produce_v3(c.call(kh.produce_request, topic, [(0, gz)]))[(topic, 0)][0] \
            == INVALID_RECORD
        assert kh.high_watermark(srv, topic, 0) == 0
        assert kh.high_watermark(srv, topic, 1) == 0
        keyed = kh.record_batch([(b"a", b"1", [], now), (b"", b"2", [], now)])
        err, record_errors, _ = produce_v8_errors(
            c.call(kh.produce_v8_request, topic, 1, keyed))[(topic, 1)]
        assert (err, record_errors) == (kh.NONE, [])

    # librdkafka reports it (a batch fails whole: one message per flush)
    reports = []
    producer = confluent_kafka.Producer({"bootstrap.servers": srv.kafka_bootstrap})
    producer.produce(topic, b"no key", partition=0,
                     on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(30) == 0
    producer.produce(topic, b"keyed", key=b"k", partition=0,
                     on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(30) == 0
    assert [None if e is None else e.code() for e in reports] == \
        [confluent_kafka.KafkaError.INVALID_RECORD, None]
    assert kh.high_watermark(srv, topic, 0) == 1


# -- latest() ---------------------------------------------------------------------------

@pytest.mark.parametrize("config", [{}, {"cleanup.policy": "compact"}, {"key.index": "true"},
                                    {"cleanup.policy": "compact", "key.index": "true"}],
                         ids=["plain", "compacted", "plain-indexed", "compacted-indexed"])
def test_latest_is_the_current_value_of_every_key(make_server, unique_name, config):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("table")
    create_topic(conn, topic, 3, config)
    rng = random.Random(11)
    model = Model()
    keyless = config.get("cleanup.policy") != "compact"
    for _ in range(4):
        random_history(conn, topic, model, 300, 3, 40, rng, keyless=keyless)
        check_against(conn, topic, model, 40)
    if config.get("key.index") == "true":
        assert key_index_rows(conn, topic) == sum(
            1 for _ in conn.execute("SELECT 1 FROM streamlog.history(%s) WHERE key IS NOT NULL",
                                    (topic,)))
    else:
        assert key_index_rows(conn, topic) is None


def test_latest_follows_the_rules_across_partitions(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    for config in ({}, {"key.index": "true"}):
        topic = unique_name("rules")
        create_topic(conn, topic, 3, config)
        t = kh.now_ms() - 60_000
        produce(conn, topic, 0, b"k", b"p0-old", t + 1000)
        produce(conn, topic, 0, b"k", b"p0-new", t + 500)  # higher offset wins in a partition
        assert lookup(conn, topic, b"k") == (0, 1, b"p0-new")
        produce(conn, topic, 2, b"k", b"p2", t + 400)       # older timestamp: p0 stays current
        assert lookup(conn, topic, b"k") == (0, 1, b"p0-new")
        produce(conn, topic, 1, b"k", b"p1", t + 501)       # newer timestamp: p1 is current
        assert lookup(conn, topic, b"k") == (1, 0, b"p1")
        assert lookup(conn, topic, b"k", 0) == (0, 1, b"p0-new")
        assert lookup(conn, topic, b"k", 2) == (2, 0, b"p2")
        produce(conn, topic, 2, b"k", None, t + 501)        # a tie: the higher partition
        assert lookup(conn, topic, b"k") is None
        assert table(conn, topic) == {}
        # text keys are their UTF-8 bytes
        conn.execute("SELECT streamlog.produce(%s, 'clé', 'v', partition => 0)", (topic,))
        assert conn.execute("SELECT value FROM streamlog.latest(%s, 'clé')",
                            (topic,)).fetchone()[0] == b"v"
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("SELECT * FROM streamlog.latest(%s, 'k'::bytea, 3)", (topic,))
        assert exc.value.sqlstate == "22023"
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("SELECT * FROM streamlog.latest(%s, NULL::bytea)", (topic,))
        assert exc.value.sqlstate == "22004"


def test_records_from_kafka_producers_are_indexed(make_server, unique_name):
    """librdkafka's own partitioner (CRC32, not murmur2), compression, and a
    lookup that finds each key wherever it went"""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("kafka")
    create_topic(conn, topic, 4, {"key.index": "true", "cleanup.policy": "compact"})
    producer = confluent_kafka.Producer({"bootstrap.servers": srv.kafka_bootstrap,
                                         "compression.codec": "lz4", "linger.ms": 5})
    expected = {}
    for i in range(2000):
        key = f"user-{i % 300}".encode()
        value = None if i % 97 == 0 else f"v{i}".encode()
        producer.produce(topic, value, key=key)
        expected[key] = value
    assert producer.flush(30) == 0
    # one producer: each key's last record is its current one
    for key, value in expected.items():
        got = lookup(conn, topic, key)
        assert (None if got is None else got[2]) == value, key
    assert {k: v[2] for k, v in table(conn, topic).items()} == \
        {k: v for k, v in expected.items() if v is not None}
    assert key_index_rows(conn, topic) == 2000


def test_key_index_turned_on_for_a_live_topic_and_off_again(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("live")
    create_topic(conn, topic, 2)
    rng = random.Random(3)
    model = Model()
    random_history(conn, topic, model, 500, 2, 50, rng)
    assert key_index_rows(conn, topic) is None

    # on: built from the log in that transaction
    alter_topic(conn, topic, {"key.index": "true"})
    keyed = conn.execute("SELECT count(*) FROM streamlog.history(%s) WHERE key IS NOT NULL",
                         (topic,)).fetchone()[0]
    assert key_index_rows(conn, topic) == keyed
    assert conn.execute("SELECT value FROM streamlog.topic_config(%s) WHERE name = 'key.index'",
                        (topic,)).fetchone()[0] == "true"
    check_against(conn, topic, model, 50)

    # produced in the transaction that turns it on: indexed at commit
    with conn.transaction():
        produce(conn, topic, 0, b"k-new", b"fresh", kh.now_ms() + 60_000)
        model.add(0, b"k-new", b"fresh", kh.now_ms() + 60_000)
        alter_topic(conn, topic, {"key.index": "false"})
        alter_topic(conn, topic, {"key.index": "true"})
    assert key_index_rows(conn, topic) == keyed + 1
    assert lookup(conn, topic, b"k-new") == (0, model.next_offset[0] - 1, b"fresh")

    # through Kafka's AlterConfigs too
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": srv.kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"key.index": "false"})
    kh.admin_results(admin.alter_configs([resource]), 30)
    assert key_index_rows(conn, topic) is None
    random_history(conn, topic, model, 100, 2, 50, rng)
    check_against(conn, topic, model, 50)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"key.index": "true"})
    kh.admin_results(admin.alter_configs([resource]), 30)
    assert key_index_rows(conn, topic) is not None
    check_against(conn, topic, model, 50)

    # dropping the topic drops its index
    relname = conn.execute("SELECT format('streamlog_data.t%%s_keys', topic_id) "
                           "FROM streamlog.topic WHERE name = %s", (topic,)).fetchone()[0]
    conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))
    assert conn.execute("SELECT to_regclass(%s)", (relname,)).fetchone()[0] is None


def test_rollback_leaves_nothing_in_the_key_index(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("rollback")
    create_topic(conn, topic, 1, {"key.index": "true"})
    produce(conn, topic, 0, b"k", b"kept", None)
    with pytest.raises(psycopg.errors.RaiseException):
        with conn.transaction():
            produce(conn, topic, 0, b"k", b"rolled back", None)
            produce(conn, topic, 0, b"other", b"rolled back", None)
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'no'; END $$")
    with conn.transaction():
        with pytest.raises(psycopg.errors.RaiseException):
            with conn.transaction():   # a savepoint
                produce(conn, topic, 0, b"k", b"savepoint", None)
                conn.execute("DO $$ BEGIN RAISE EXCEPTION 'no'; END $$")
        produce(conn, topic, 0, b"k2", b"after", None)
    assert key_index_rows(conn, topic) == 2
    assert lookup(conn, topic, b"k") == (0, 0, b"kept")
    assert lookup(conn, topic, b"other") is None
    assert lookup(conn, topic, b"k2") == (0, 1, b"after")


def test_lookups_are_right_after_kill9(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("crash")
    create_topic(conn, topic, 2, {"key.index": "true"})
    rng = random.Random(7)
    model = Model()
    random_history(conn, topic, model, 400, 2, 60, rng)
    # an open transaction at the crash leaves nothing
    other = srv.connect(autocommit=False)
    produce(other, topic, 0, b"k1", b"never", None)
    srv.kill9()
    srv.start()
    conn = srv.connect()
    check_against(conn, topic, model, 60)
    keyed = conn.execute("SELECT count(*) FROM streamlog.history(%s) WHERE key IS NOT NULL",
                         (topic,)).fetchone()[0]
    assert key_index_rows(conn, topic) == keyed
    random_history(conn, topic, model, 100, 2, 60, rng)
    check_against(conn, topic, model, 60)


def test_records_removed_from_the_log_are_not_found(make_server, unique_name):
    """delete_records moves the log start past a key's records: the lookup
    skips their entries, and the cleaner prunes them"""
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    conn = srv.connect()
    topic = unique_name("pruned")
    create_topic(conn, topic, 1, {"key.index": "true", "segment.bytes": "16384"})
    for i in range(300):
        produce(conn, topic, 0, f"k{i % 10}".encode(), f"v{i}".encode(), None)
    produce(conn, topic, 0, b"once", b"gone soon", None)
    assert lookup(conn, topic, b"once") == (0, 300, b"gone soon")
    conn.execute("SELECT streamlog.delete_records(%s, 0, 301)", (topic,))
    assert lookup(conn, topic, b"once") is None
    assert lookup(conn, topic, b"k3") is None
    assert table(conn, topic) == {}
    produce(conn, topic, 0, b"k3", b"back", None)
    assert lookup(conn, topic, b"k3") == (0, 301, b"back")
    wait_until(lambda: key_index_rows(conn, topic) == 1, 60, "the cleaner to prune the key index")


def test_large_commits_and_backfills_index_every_record(make_server, unique_name):
    """A commit, and a backfill, of more entries than the writer gathers
    before it writes them"""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("large")
    create_topic(conn, topic, 2, {"key.index": "true"})
    conn.execute("SELECT count(streamlog.produce(%s, 'k' || (g %% 50000), 'v' || g)) "
                 "FROM generate_series(0, 149999) g", (topic,))
    assert key_index_rows(conn, topic) == 150000
    alter_topic(conn, topic, {"key.index": "false"})
    alter_topic(conn, topic, {"key.index": "true"})
    assert key_index_rows(conn, topic) == 150000
    for k in (0, 1, 49999, 12345):
        got = conn.execute("SELECT streamlog.as_text(value) FROM streamlog.latest(%s, %s)",
                           (topic, f"k{k}")).fetchone()
        assert got == (f"v{100000 + k}",)
    assert conn.execute("SELECT count(*) FROM streamlog.latest(%s)", (topic,)).fetchone()[0] == 50000


def test_entries_of_another_key_with_the_same_hash_are_skipped(make_server, unique_name):
    """A 64-bit hash collision cannot be produced on purpose, so entries that
    look like one are written by hand: the key index hashes a key's bytes as
    hashtextextended(text, 0) hashes a text's.  The lookup reads the record
    each entry points to and compares the key bytes."""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("collide")
    create_topic(conn, topic, 2, {"key.index": "true"})
    produce(conn, topic, 0, b"k", b"mine", None)            # offset 0
    produce(conn, topic, 0, b"other", b"not mine", None)    # offset 1
    produce(conn, topic, 1, b"other", b"not mine", None)    # partition 1, offset 0
    keys = conn.execute("SELECT format('streamlog_data.t%%s_keys', topic_id) FROM streamlog.topic "
                        "WHERE name = %s", (topic,)).fetchone()[0]
    # entries of "k" pointing at "other"'s records, and at offsets never written
    conn.execute(f"INSERT INTO {keys} VALUES (hashtextextended('k', 0), 0, 1), "
                 f"(hashtextextended('k', 0), 1, 0), (hashtextextended('k', 0), 0, 1000)")
    assert lookup(conn, topic, b"k") == (0, 0, b"mine")
    assert lookup(conn, topic, b"k", 1) is None
    assert lookup(conn, topic, b"other", 0) == (0, 1, b"not mine")
    # the entries really are the key's: without the real one, nothing is found
    conn.execute(f"DELETE FROM {keys} WHERE key_hash = hashtextextended('k', 0) AND \"offset\" = 0 "
                 "AND partition = 0")
    assert lookup(conn, topic, b"k") is None


def test_setting_key_index_again_rebuilds_a_missing_index(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("rebuild")
    create_topic(conn, topic, 1, {"key.index": "true"})
    produce(conn, topic, 0, b"k", b"v", None)
    keys = conn.execute("SELECT format('streamlog_data.t%%s_keys', topic_id) FROM streamlog.topic "
                        "WHERE name = %s", (topic,)).fetchone()[0]
    conn.execute(f"DROP TABLE {keys}")
    # without its table the lookup reads the log, and produce goes on
    assert lookup(conn, topic, b"k") == (0, 0, b"v")
    produce(conn, topic, 0, b"k2", b"v2", None)
    alter_topic(conn, topic, {"key.index": "true"})
    assert key_index_rows(conn, topic) == 2
    assert lookup(conn, topic, b"k2") == (0, 1, b"v2")


def test_kill9_while_key_index_is_built_leaves_none(make_server, unique_name):
    """Turning key.index on is one transaction: a crash in the middle of the
    backfill leaves the topic as it was, and it can be turned on again"""
    import threading
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("backfill")
    create_topic(conn, topic, 2)
    conn.execute("SELECT count(streamlog.produce(%s, 'k' || g, 'v' || g)) "
                 "FROM generate_series(1, 400000) g", (topic,))
    altering = srv.connect()
    errors = []

    def alter():
        try:
            alter_topic(altering, topic, {"key.index": "true"})
        except psycopg.Error as e:
            errors.append(e)

    t = threading.Thread(target=alter)
    t.start()
    wait_until(lambda: conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND query LIKE 'SELECT streamlog.alter_topic%%'").fetchone()[0] == 1,
        30, "the alter to run")
    srv.kill9()
    t.join(60)
    srv.start()
    conn = srv.connect()
    setting = conn.execute("SELECT value FROM streamlog.topic_config(%s) WHERE name = 'key.index'",
                           (topic,)).fetchone()[0]
    if errors:
        # killed in the middle: nothing of it is left
        assert (setting, key_index_rows(conn, topic)) == ("false", None)
    else:
        # it committed first (a fast machine): all of it is there
        assert (setting, key_index_rows(conn, topic)) == ("true", 400000)
    alter_topic(conn, topic, {"key.index": "true"})
    assert key_index_rows(conn, topic) == 400000
    assert conn.execute("SELECT streamlog.as_text(value) FROM streamlog.latest(%s, 'k123')",
                        (topic,)).fetchone() == ("v123",)
