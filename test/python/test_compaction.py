"""Log compaction (cleanup.policy=compact): streamlog.clean() and the
background cleaner keep the last record of each key at its offset, with its
timestamp and headers; tombstones go after delete.retention.ms; readers
during a pass miss nothing; a crash mid-pass loses nothing."""

import datetime
import json
import os
import subprocess
import time

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafkajs import JS_DIR, ensure_kafkajs
from psycopg.types.json import Jsonb
from pgserver import wait_until

# The cleaner rolls segments every 200 ms; compaction only when a test
# turns it on, so that clean()'s figures are its own.
CONF = {"streamlog.retention_check_interval": "200ms",
        "streamlog.log_cleaner_enable": "off"}


def create_topic(conn, topic, config, partitions=1):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config)))


def rolled(conn, topic, partition=0):
    """Has the cleaner rolled the segment the last records went to: does
    the newest segment that appends reached begin at the high watermark?"""
    return conn.execute(
        "SELECT (SELECT max(s.base_offset) FROM streamlog.segment s "
        "        JOIN streamlog.topic t USING (topic_id) "
        "        WHERE t.name = %s AND s.partition = %s) = "
        "       (SELECT high_watermark FROM streamlog.partitions "
        "        WHERE topic = %s AND partition = %s)",
        (topic, partition, topic, partition)).fetchone()[0]


def produce_segment(conn, topic, records, partition=0):
    """Produce records [(key, value)] or [(key, value, ts, headers)] in one
    transaction, then wait for the cleaner to roll the segment they went to
    (segment.ms is tiny)."""
    with conn.transaction():
        for rec in records:
            key, value = rec[0], rec[1]
            ts = rec[2] if len(rec) > 2 else None
            headers = Jsonb(rec[3]) if len(rec) > 3 and rec[3] is not None else None
            conn.execute("SELECT streamlog.produce(%s, %s::text, %s::text, headers => %s, "
                         "partition => %s, ts => %s)",
                         (topic, key, value, headers, partition, ts))
    wait_until(lambda: rolled(conn, topic, partition), 30, "the segment to roll")


def history(conn, topic, partition=0):
    return [(off, None if k is None else bytes(k).decode(),
             None if v is None else bytes(v).decode())
            for off, k, v in conn.execute(
                'SELECT "offset", key, value FROM streamlog.history(%s, ARRAY[%s])',
                (topic, partition)).fetchall()]


def latest_model(records):
    """{key: (offset, value)} of the last record of each key."""
    model = {}
    for off, key, value in records:
        if key is not None:
            model[key] = (off, value)
    return model


def test_clean_keeps_last_record_of_each_key(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})

    for round_ in range(3):
        produce_segment(conn, topic, [("k%d" % (i % 5), "v%d-%d" % (round_, i))
                                      for i in range(10)])
    before = history(conn, topic)
    assert len(before) == 30
    model = latest_model(before)

    rows = conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
    assert len(rows) == 1
    partition, cleaned_offset, removed, reclaimed = rows[0]
    assert partition == 0
    assert cleaned_offset == 30
    assert removed == 25

    after = history(conn, topic)
    assert [(off, k, v) for off, k, v in after] == sorted(
        (off, k, v) for k, (off, v) in model.items())
    # offsets never change: each survivor is where it was
    assert set(after) <= set(before)

    # a second clean finds nothing dirty
    rows = conn.execute("SELECT * FROM streamlog.clean(%s, 0)", (topic,)).fetchall()
    assert rows == [(0, 30, 0, 0)]
    assert history(conn, topic) == after


def segments_bytes(conn, topic):
    """Disk bytes of the topic's segment tables, as clean() counts them"""
    return conn.execute(
        "SELECT sum(pg_total_relation_size(s.relid))::bigint FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s", (topic,)).fetchone()[0]


def test_clean_counts_the_disk_space_it_reclaims(make_server, unique_name):
    # no autovacuum: it would add free-space maps to the segments between
    # the two measurements
    srv = make_server(conf={**CONF, "autovacuum": "off"})
    conn = srv.connect()
    topic = unique_name("cmp")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})
    value = "x" * 1024
    for round_ in range(3):
        produce_segment(conn, topic, [("k%d" % (i % 5), value) for i in range(300)])
    before = segments_bytes(conn, topic)

    [(_, cleaned_offset, removed, reclaimed)] = conn.execute(
        "SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
    assert (cleaned_offset, removed) == (900, 895)
    after = segments_bytes(conn, topic)
    # 895 records of 1 KiB went: far more than a page
    assert reclaimed > 800 * 1024, (before, after, reclaimed)
    assert reclaimed == before - after
    [(total,)] = conn.execute("SELECT bytes_reclaimed FROM streamlog.compaction "
                              "WHERE topic = %s", (topic,)).fetchall()
    assert total == reclaimed


def test_clean_errors(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("plain")
    create_topic(conn, topic, {})
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert exc.value.sqlstate == "22023"
    assert "not compacted" in exc.value.diag.message_primary
    assert "cleanup.policy" in exc.value.diag.message_hint


def test_clean_keeps_timestamps_and_headers_and_removes_keyless(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-ts")
    # a compacted topic refuses records without a key: this one gets them
    # while it is a plain topic, kept forever, and is compacted afterwards
    create_topic(conn, topic, {"retention.ms": -1, "segment.ms": 1,
                               "compression.type": "gzip"})
    base = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    ts = [base + datetime.timedelta(seconds=i) for i in range(6)]
    produce_segment(conn, topic, [("a", "a0", ts[0], {"h": "0"}),
                                  (None, "keyless", ts[1], None),
                                  ("b", "b0", ts[2], {"h": "2", "x": "y"})])
    produce_segment(conn, topic, [("a", "a1", ts[3], {"h": "3"}),
                                  ("c", "c0", ts[4], None)])
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"cleanup.policy": "compact"})))
    [(_, cleaned, removed, _)] = conn.execute(
        "SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
    assert (cleaned, removed) == (5, 2)
    rows = conn.execute(
        'SELECT "offset", ts, streamlog.as_text(key), streamlog.as_text(value), '
        "(SELECT array_agg(h.key || '=' || convert_from(h.value, 'UTF8') ORDER BY ord) "
        "   FROM unnest(headers) WITH ORDINALITY h(key, value, ord)) "
        "FROM streamlog.history(%s) ORDER BY 1", (topic,)).fetchall()
    assert rows == [(2, ts[2], "b", "b0", ["h=2", "x=y"]),
                    (3, ts[3], "a", "a1", ["h=3"]),
                    (4, ts[4], "c", "c0", None)]


def test_tombstones_kept_until_delete_horizon(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    kept = unique_name("cmp-tomb-kept")
    gone = unique_name("cmp-tomb-gone")
    base = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    ts = [base + datetime.timedelta(seconds=i) for i in range(4)]
    for topic, retention in ((kept, 3_600_000), (gone, 0)):
        create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                                   "delete.retention.ms": retention})
        produce_segment(conn, topic, [("a", "a0", ts[0]), ("b", "b0", ts[1])])
        produce_segment(conn, topic, [("a", None, ts[2]), ("b", "b1", ts[3])])

    # the first pass keeps the tombstone (and only it for its key), its
    # timestamp unchanged although its batch now carries the delete horizon
    for topic in (kept, gone):
        conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
        assert conn.execute(
            'SELECT "offset", ts, streamlog.as_text(key), streamlog.as_text(value) '
            "FROM streamlog.history(%s) ORDER BY 1", (topic,)).fetchall() == [
                (2, ts[2], "a", None), (3, ts[3], "b", "b1")]

    # Kafka clients read the record timestamps of a batch with a delete
    # horizon as they were (baseTimestamp + delta)
    want = [(2, int(ts[2].timestamp() * 1000), b"a", None),
            (3, int(ts[3].timestamp() * 1000), b"b", b"b1")]
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(kept, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            m = consumer.poll(1)
            if m is not None and m.error() is None:
                got.append((m.offset(), m.timestamp()[1], m.key(), m.value()))
        assert got == want
    finally:
        consumer.close()
    kp = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, group_id=None,
                       enable_auto_commit=False)
    try:
        tp = KpTopicPartition(kept, 0)
        kp.assign([tp])
        kp.seek(tp, 0)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            for recs in kp.poll(timeout_ms=1000).values():
                got.extend((r.offset, r.timestamp, r.key, r.value) for r in recs)
        assert got == want
    finally:
        kp.close()

    node = ensure_kafkajs()
    res = subprocess.run([node, os.path.join(JS_DIR, "read_partition.js"), srv.kafka_bootstrap,
                          kept, unique_name("g"), "2"], capture_output=True, text=True,
                         timeout=90)
    assert res.returncode == 0, res.stderr
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["o"], r["ts"], r["k"], r["v"]) for r in got] == [
        (off, ts, k.decode(), None if v is None else v.decode()) for off, ts, k, v in want]

    # a later pass keeps the tombstone before its horizon, removes it after
    conn.execute("SELECT * FROM streamlog.clean(%s)", (kept,))
    assert [r[0] for r in conn.execute(
        'SELECT "offset" FROM streamlog.history(%s)', (kept,)).fetchall()] == [2, 3]

    def tombstone_gone():
        conn.execute("SELECT * FROM streamlog.clean(%s)", (gone,))
        return [r[0] for r in conn.execute(
            'SELECT "offset" FROM streamlog.history(%s)', (gone,)).fetchall()] == [3]
    wait_until(tombstone_gone, 30, "the tombstone past its horizon to go")


def test_small_dedupe_buffer_cleans_in_several_passes(make_server, unique_name):
    # 1 kB holds 37 keys of the offset map
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_dedupe_buffer_size": "1kB"}))
    conn = srv.connect()
    topic = unique_name("cmp-passes")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})
    for round_ in range(3):
        produce_segment(conn, topic, [("k%03d" % i, "v%d-%d" % (round_, i))
                                      for i in range(100)])
    before = history(conn, topic)
    model = latest_model(before)

    checkpoints = []
    while not checkpoints or checkpoints[-1] < 300:
        [(_, cleaned, _, _)] = conn.execute(
            "SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
        assert not checkpoints or cleaned > checkpoints[-1], "every pass makes progress"
        checkpoints.append(cleaned)
        after = history(conn, topic)
        # every pass keeps the last record of every key
        assert latest_model(after) == model
        assert set(after) <= set(before)
    assert checkpoints[0] == 37
    assert len(checkpoints) > 3
    assert history(conn, topic) == sorted((off, k, v) for k, (off, v) in model.items())
    [(passes,)] = conn.execute("SELECT passes FROM streamlog.compaction WHERE topic = %s",
                               (topic,)).fetchall()
    assert passes == len(checkpoints)


def test_background_cleaner_compacts_due_partitions(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    conn = srv.connect()
    topic = unique_name("cmp-bg")
    lazy = unique_name("cmp-lazy")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1}, partitions=2)
    # never dirty enough: a ratio must be above min.cleanable.dirty.ratio
    create_topic(conn, lazy, {"cleanup.policy": "compact", "segment.ms": 1,
                              "min.cleanable.dirty.ratio": 1})
    for p in (0, 1):
        produce_segment(conn, topic, [("k%d" % (i % 4), "v%d" % i) for i in range(20)], p)
    produce_segment(conn, lazy, [("k", "v%d" % i) for i in range(5)])

    def compacted():
        rows = conn.execute(
            "SELECT partition, cleaned_offset, passes, records_removed, last_run IS NOT NULL, "
            "last_error FROM streamlog.compaction WHERE topic = %s ORDER BY 1",
            (topic,)).fetchall()
        return rows if all(r[2] >= 1 and r[1] == 20 for r in rows) and len(rows) == 2 else None
    rows = wait_until(compacted, 60, "the cleaner to compact both partitions")
    for partition, cleaned, passes, removed, ran, error in rows:
        assert (cleaned, removed, ran, error) == (20, 16, True, None)
        assert history(conn, topic, partition) == [
            (16, "k0", "v16"), (17, "k1", "v17"), (18, "k2", "v18"), (19, "k3", "v19")]

    # the replaced tables are dropped once no one reads them
    wait_until(lambda: conn.execute(
        "SELECT count(*) FROM streamlog.retired_segment").fetchone()[0] == 0, 60,
        "the retired segments to be dropped")
    [(orphans,)] = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'streamlog_data' AND c.relkind = 'r' "
        "AND c.oid NOT IN (SELECT relid FROM streamlog.segment)").fetchall()
    assert orphans == 0

    # the lazy topic is left alone, and shows how dirty it is
    [(cleaned, ratio, dirty, passes)] = conn.execute(
        "SELECT cleaned_offset, dirty_ratio, dirty_bytes, passes FROM streamlog.compaction "
        "WHERE topic = %s", (lazy,)).fetchall()
    assert (cleaned, ratio, passes) == (0, 1.0, 0)
    assert dirty > 0
    assert len(history(conn, lazy)) == 5


def test_compact_alone_keeps_old_segments_compact_delete_drops_them(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    compact = unique_name("cmp-only")
    both = unique_name("cmp-both")
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    for topic, policy in ((compact, "compact"), (both, "compact,delete")):
        create_topic(conn, topic, {"cleanup.policy": policy, "segment.ms": 1,
                                   "retention.ms": 1000})
        produce_segment(conn, topic, [("k%d" % i, "old", old) for i in range(3)])
        produce_segment(conn, topic, [("n", "new")])
    wait_until(lambda: conn.execute(
        "SELECT log_start_offset FROM streamlog.partitions WHERE topic = %s",
        (both,)).fetchone()[0] == 3, 30, "retention to drop the old segment")
    # retention ran on both topics meanwhile; the compact-only one kept all
    assert len(history(conn, compact)) == 4
    assert conn.execute("SELECT log_start_offset FROM streamlog.partitions WHERE topic = %s",
                        (compact,)).fetchone()[0] == 0


def test_kill9_during_pass_loses_nothing(make_server, unique_name):
    # a slow cleaner (I/O budget) so that the kill lands inside a pass
    conf = {"streamlog.retention_check_interval": "200ms",
            "streamlog.log_cleaner_io_max_bytes_per_second": "20kB"}
    srv = make_server(conf=conf)
    conn = srv.connect()
    topic = unique_name("cmp-crash")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "min.cleanable.dirty.ratio": 1})
    value = "x" * 200
    for round_ in range(3):
        produce_segment(conn, topic, [("k%d" % (i % 50), "%s-%d-%d" % (value, round_, i))
                                      for i in range(200)])
    before = history(conn, topic)
    model = latest_model(before)

    # Make it due, then wait for the cleaner to be in the middle of the pass
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"min.cleanable.dirty.ratio": 0.1})))
    wait_until(lambda: conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner' "
        "AND query = 'compacting' AND state = 'active'").fetchone(), 60,
        "the cleaner to be compacting")
    conn.close()
    srv.kill9()
    srv.update_conf({"streamlog.log_cleaner_io_max_bytes_per_second": "0",
                     "streamlog.log_cleaner_enable": "off"})
    srv.start()
    conn = srv.connect()
    # nothing lost, nothing twice: the pass left no trace
    assert history(conn, topic) == before
    assert conn.execute("SELECT count(*) FROM streamlog.retired_segment").fetchone()[0] == 0
    [(passes,)] = conn.execute("SELECT passes FROM streamlog.compaction WHERE topic = %s",
                               (topic,)).fetchall()
    assert passes == 0
    [(_, cleaned, removed, _)] = conn.execute(
        "SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
    assert (cleaned, removed) == (600, 550)
    assert history(conn, topic) == sorted((off, k, v) for k, (off, v) in model.items())


def test_max_compaction_lag_rolls_and_compacts(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    conn = srv.connect()
    topic = unique_name("cmp-maxlag")
    # never dirty enough, segments that would roll in a week: only
    # max.compaction.lag.ms rolls the active segment and makes it due
    create_topic(conn, topic, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": 1,
                               "max.compaction.lag.ms": 1000})
    with conn.transaction():
        for i in range(10):
            conn.execute("SELECT streamlog.produce(%s, %s::text, %s::text, partition => 0)",
                         (topic, "k%d" % (i % 2), "v%d" % i))
    wait_until(lambda: history(conn, topic) == [(8, "k0", "v8"), (9, "k1", "v9")], 60,
               "the cleaner to compact past max.compaction.lag.ms")


def test_min_compaction_lag_leaves_young_segments(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-minlag")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "min.compaction.lag.ms": 3_600_000})
    produce_segment(conn, topic, [("k", "v%d" % i) for i in range(5)])
    assert conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall() == [
        (0, 0, 0, 0)]
    assert len(history(conn, topic)) == 5
    # old enough once the lag is shorter
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"min.compaction.lag.ms": 0})))
    assert conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()[0][1:3] == (
        5, 4)


def test_switch_between_delete_and_compact(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-switch")
    create_topic(conn, topic, {"segment.ms": 1})
    produce_segment(conn, topic, [("a", "a0"), ("b", "b0"), ("a", "a1")])
    conn.execute("SELECT streamlog.delete_records(%s, 0, 1)", (topic,))
    produce_segment(conn, topic, [("b", "b1"), (None, "keyless")])
    # compact from the log start (1)
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"cleanup.policy": "compact"})))
    assert conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()[0][1:3] == (
        5, 3)
    assert history(conn, topic) == [(2, "a", "a1"), (3, "b", "b1")]
    # and back to delete: retention drops whole segments again
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"cleanup.policy": "delete", "retention.ms": 1})))
    produce_segment(conn, topic, [("c", "c0")])
    wait_until(lambda: history(conn, topic) == [], 30, "retention to drop every segment")


def test_error_in_one_partition_is_shown_and_the_cleaner_goes_on(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    conn = srv.connect()
    broken = unique_name("cmp-broken")
    fine = unique_name("cmp-fine")
    for topic in (broken, fine):
        create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                                   "min.cleanable.dirty.ratio": 1})
        produce_segment(conn, topic, [("k%d" % (i % 3), "v%d" % i) for i in range(9)])
    # one byte of the broken topic's stored batch changes: its CRC fails
    [(table,)] = conn.execute(
        "SELECT s.relid::regclass::text FROM streamlog.segment s JOIN streamlog.topic t "
        "USING (topic_id) WHERE t.name = %s ORDER BY s.seq LIMIT 1", (broken,)).fetchall()
    conn.execute("UPDATE %s SET batch = set_byte(batch, length(batch) - 2, "
                 "get_byte(batch, length(batch) - 2) # 1)" % table)
    for topic in (broken, fine):
        conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                     (topic, Jsonb({"min.cleanable.dirty.ratio": 0.5})))

    def settled():
        rows = {topic: (passes, error) for topic, passes, error in conn.execute(
            "SELECT topic, passes, last_error FROM streamlog.compaction "
            "WHERE topic IN (%s, %s)", (broken, fine)).fetchall()}
        return rows if rows.get(broken, (0, None))[1] and rows.get(fine, (0, None))[0] else None
    rows = wait_until(settled, 60, "the cleaner to fail one partition and clean the other")
    assert "CRC" in rows[broken][1]
    assert rows[broken][0] == 0
    assert history(conn, fine) == [(6, "k0", "v6"), (7, "k1", "v7"), (8, "k2", "v8")]
    # clean() says what is wrong with the broken one
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT * FROM streamlog.clean(%s)", (broken,))
    assert exc.value.sqlstate == "XX001"
    # the cleaner worker itself never restarted
    [(pids,)] = conn.execute(
        "SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner'"
    ).fetchall()
    assert pids == 1
    assert "terminated by signal" not in open(srv.logfile).read()


def test_rewritten_batches_take_the_topic_codec(make_server, unique_name):
    from confluent_kafka import Producer
    from kafka_helpers import stored_batch_codecs
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-codec")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "compression.type": "producer"})
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap,
                         "compression.type": "lz4", "linger.ms": 50})
    for round_ in range(2):
        for i in range(20):
            # compressible, so that librdkafka never sends a batch
            # uncompressed for being smaller so
            producer.produce(topic, key=b"k%d" % (i % 4),
                             value=b"v%d-%d " % (round_, i) + b"x" * 200, partition=0)
        assert producer.flush(30) == 0
        wait_until(lambda: rolled(conn, topic), 30, "the segment to roll")
    lz4, zstd = 3, 4
    assert set(stored_batch_codecs(srv, topic)) == {lz4}
    # "producer": each batch keeps its own codec
    conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert set(stored_batch_codecs(srv, topic)) == {lz4}
    # a codec of the topic's: every batch a pass keeps is written with it
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"compression.type": "zstd"})))
    produce_segment(conn, topic, [("k0", "last")])
    conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert set(stored_batch_codecs(srv, topic)) == {zstd}
    assert [(off, k, v.split(" ")[0]) for off, k, v in history(conn, topic)] == [
        (37, "k1", "v1-17"), (38, "k2", "v1-18"), (39, "k3", "v1-19"), (40, "k0", "last")]


def test_background_cleaner_removes_tombstones_past_their_horizon(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms"})
    conn = srv.connect()
    topic = unique_name("cmp-bg-tomb")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "delete.retention.ms": 500})
    produce_segment(conn, topic, [("a", "a0"), ("b", "b0"), ("a", None)])
    # the first pass keeps the tombstone; once nothing is dirty any more, its
    # horizon alone makes the partition due again
    wait_until(lambda: history(conn, topic) == [(1, "b", "b0")], 60,
               "the cleaner to remove the tombstone past its horizon")
    [(passes, cleaned)] = conn.execute(
        "SELECT passes, cleaned_offset FROM streamlog.compaction WHERE topic = %s",
        (topic,)).fetchall()
    assert passes >= 2 and cleaned == 3


def test_readers_during_compaction_skip_no_surviving_record(make_server, unique_name):
    """P2 under compaction: a reader going through the log in small reads
    (SQL read() and a Kafka consumer) while producers append and passes
    commit sees every record that survives to the end below the high
    watermark it started with: compaction only ever removes records."""
    import threading
    srv = make_server(conf={"streamlog.retention_check_interval": "100ms"})
    conn = srv.connect()
    topic = unique_name("cmp-p2")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "min.cleanable.dirty.ratio": 0.01})
    stop = threading.Event()
    errors = []
    sql_passes = []
    kafka_passes = []

    def producer():
        c = srv.connect()
        i = 0
        while not stop.is_set():
            with c.transaction():
                for _ in range(20):
                    c.execute("SELECT streamlog.produce(%s, %s::text, %s::text, partition => 0)",
                              (topic, "k%d" % (i % 15), "v%d" % i))
                    i += 1
            time.sleep(0.02)
        c.close()

    def cleaner():
        c = srv.connect()
        while not stop.is_set():
            try:
                c.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        c.close()

    def sql_reader():
        c = srv.connect()
        while not stop.is_set():
            hwm = c.execute("SELECT high_watermark FROM streamlog.partitions WHERE topic = %s",
                            (topic,)).fetchone()[0]
            seen, pos = set(), 0
            while pos < hwm:
                rows = c.execute('SELECT "offset" FROM streamlog.read(%s, 0, %s, 7)',
                                 (topic, pos)).fetchall()
                if not rows:
                    break
                seen.update(r[0] for r in rows)
                pos = rows[-1][0] + 1
            sql_passes.append((hwm, seen))
        c.close()

    def kafka_reader():
        consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "unused",
                             "enable.auto.commit": False,
                             "max.partition.fetch.bytes": 2000})
        try:
            while not stop.is_set():
                _, hwm = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
                consumer.assign([TopicPartition(topic, 0, 0)])
                seen, pos = set(), 0
                deadline = time.monotonic() + 30
                while pos < hwm and time.monotonic() < deadline:
                    m = consumer.poll(0.5)
                    if m is not None and m.error() is None:
                        seen.add(m.offset())
                        pos = m.offset() + 1
                consumer.unassign()
                kafka_passes.append((hwm, seen))
        finally:
            consumer.close()

    def guarded(f):
        def run():
            try:
                f()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                stop.set()
        return run

    threads = [threading.Thread(target=guarded(f))
               for f in (producer, cleaner, sql_reader, kafka_reader)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: errors or len(sql_passes) >= 20 and len(kafka_passes) >= 5 and
                   conn.execute("SELECT passes FROM streamlog.compaction WHERE topic = %s",
                                (topic,)).fetchone()[0] >= 20, 120,
                   "readers and passes to interleave")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors
    survivors = {off for off, _, _ in history(conn, topic)}
    for name, passes in (("SQL", sql_passes), ("Kafka", kafka_passes)):
        for hwm, seen in passes:
            missed = {off for off in survivors if off < hwm} - seen
            assert not missed, f"a {name} reader up to {hwm} skipped surviving offsets {sorted(missed)[:10]}"


def test_log_append_time_batches_keep_their_time(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-lat")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "message.timestamp.type": "LogAppendTime",
                               "delete.retention.ms": 3_600_000})
    produce_segment(conn, topic, [("a", "a0"), ("b", "b0"), ("c", "c0")])
    produce_segment(conn, topic, [("a", "a1"), ("b", None)])
    before = {off: ts for off, ts in conn.execute(
        'SELECT "offset", ts FROM streamlog.history(%s)', (topic,)).fetchall()}
    conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    after = conn.execute('SELECT "offset", ts, streamlog.as_text(value) '
                         "FROM streamlog.history(%s) ORDER BY 1", (topic,)).fetchall()
    assert [(off, v) for off, _, v in after] == [(2, "c0"), (3, "a1"), (4, None)]
    assert all(ts == before[off] for off, ts, _ in after)


def test_several_cleaner_threads_share_the_partitions(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "200ms",
                            "streamlog.log_cleaner_threads": 3,
                            "log_min_messages": "debug1"})
    conn = srv.connect()
    topic = unique_name("cmp-threads")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1}, partitions=6)
    for p in range(6):
        produce_segment(conn, topic, [("k%d" % (i % 2), "v%d" % i) for i in range(6)], p)
    wait_until(lambda: conn.execute(
        "SELECT count(*) FROM streamlog.compaction WHERE topic = %s AND passes >= 1 "
        "AND cleaned_offset = 6", (topic,)).fetchone()[0] == 6, 60,
        "the cleaners to compact every partition")
    for p in range(6):
        assert history(conn, topic, p) == [(4, "k0", "v4"), (5, "k1", "v5")]
    assert sorted(r[0] for r in conn.execute(
        "SELECT application_name FROM pg_stat_activity "
        "WHERE backend_type = 'streamlog cleaner'").fetchall()) == [
            "streamlog cleaner", "streamlog cleaner 1", "streamlog cleaner 2"]
    # each partition was compacted by one cleaner, and not all by the same
    import re
    by_partition = {}
    for pid, partition in re.findall(r"\[(\d+)\] DEBUG:  streamlog cleaner compacted partition (\d+) "
                                     r"of topic \"%s\"" % re.escape(topic), srv.log_text()):
        by_partition.setdefault(partition, set()).add(pid)
    assert len(by_partition) == 6
    assert all(len(pids) == 1 for pids in by_partition.values())
    assert len(set.union(*by_partition.values())) > 1


def test_throttled_pass_ends_at_shutdown(make_server, unique_name):
    """A pass sleeping on its I/O budget (1 kB/s: minutes for this log)
    serves SIGTERM at once: a fast shutdown ends, the pass leaves no trace,
    and the cleaner is not counted as crashed."""
    conf = {"streamlog.retention_check_interval": "200ms",
            "streamlog.log_cleaner_io_max_bytes_per_second": "1kB"}
    srv = make_server(conf=conf)
    conn = srv.connect()
    topic = unique_name("cmp-sigterm")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "min.cleanable.dirty.ratio": 1})
    value = "x" * 200
    for round_ in range(2):
        produce_segment(conn, topic, [("k%d" % (i % 50), "%s-%d" % (value, i))
                                      for i in range(300)])
    before = history(conn, topic)
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"min.cleanable.dirty.ratio": 0.1})))
    wait_until(lambda: conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner' "
        "AND query = 'compacting' AND state = 'active' AND wait_event_type = 'Extension'"
    ).fetchone(), 60, "the cleaner to sleep on its I/O budget in a pass")
    conn.close()
    log_offset = len(srv.log_text())
    srv.stop("fast")          # fails the test if the cleaner holds it up
    log = srv.log_text()[log_offset:]
    assert "terminated by signal" not in log
    srv.update_conf({"streamlog.log_cleaner_enable": "off"})
    srv.start()
    conn = srv.connect()
    assert history(conn, topic) == before
    assert conn.execute("SELECT passes FROM streamlog.compaction WHERE topic = %s",
                        (topic,)).fetchone()[0] == 0


def test_rewritten_batch_keeps_its_last_offset(make_server, unique_name):
    """As Kafka's cleaner: a batch that loses its last records keeps its
    last offset, so that a consumer moves past it, and an idempotent
    producer's last sequence stays."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-last")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})
    produce_segment(conn, topic, [("a", "a0"), ("b", "b0"), ("c", "c0")])
    produce_segment(conn, topic, [("b", "b1"), ("c", "c1")])
    conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert history(conn, topic) == [(0, "a", "a0"), (3, "b", "b1"), (4, "c", "c1")]
    batches = []
    for (table,) in conn.execute(
            "SELECT s.relid::regclass::text FROM streamlog.segment s JOIN streamlog.topic t "
            "USING (topic_id) WHERE t.name = %s ORDER BY s.seq", (topic,)).fetchall():
        batches += conn.execute("SELECT base_offset, last_offset FROM %s "
                                "WHERE chunk = 0 ORDER BY 1" % table).fetchall()
    assert batches == [(0, 2), (3, 4)]
    # a consumer at offset 1 (removed) gets the next record, 3
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 1)])
        got = None
        deadline = time.monotonic() + 30
        while got is None and time.monotonic() < deadline:
            m = consumer.poll(1)
            if m is not None and m.error() is None:
                got = (m.offset(), m.value())
        assert got == (3, b"b1")
    finally:
        consumer.close()
    kp = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, group_id=None,
                       enable_auto_commit=False)
    try:
        tp = KpTopicPartition(topic, 0)
        kp.assign([tp])
        kp.seek(tp, 1)
        got = None
        deadline = time.monotonic() + 30
        while got is None and time.monotonic() < deadline:
            for recs in kp.poll(timeout_ms=1000).values():
                got = got or (recs[0].offset, recs[0].value)
        assert got == (3, b"b1")
    finally:
        kp.close()


def test_background_pass_gives_way_to_a_change_of_its_topic(make_server, unique_name):
    """A pass of the cleaner (slowed to minutes by its I/O budget) that an
    alter_topic() waits for gives way at once: the alteration commits, the
    producers queued behind it go on, the pass leaves no trace and is not
    taken for a failure."""
    import threading
    conf = {"streamlog.retention_check_interval": "200ms",
            "streamlog.log_cleaner_io_max_bytes_per_second": "1kB"}
    srv = make_server(conf=conf)
    conn = srv.connect()
    topic = unique_name("cmp-giveway")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1,
                               "min.cleanable.dirty.ratio": 1})
    value = "x" * 200
    for _ in range(2):
        produce_segment(conn, topic, [("k%d" % (i % 50), "%s-%d" % (value, i))
                                      for i in range(300)])
    before = history(conn, topic)
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"min.cleanable.dirty.ratio": 0.1})))
    wait_until(lambda: conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner' "
        "AND query = 'compacting' AND state = 'active' AND wait_event_type = 'Extension'"
    ).fetchone(), 60, "the cleaner to sleep on its I/O budget in a pass")

    done = []

    def alter_then_produce():
        c = srv.connect()
        c.execute("SELECT streamlog.alter_topic(%s, %s)",
                  (topic, Jsonb({"min.cleanable.dirty.ratio": 1})))
        c.execute("SELECT streamlog.produce(%s, 'after', 'alter', partition => 0)", (topic,))
        done.append(True)
        c.close()
    t = threading.Thread(target=alter_then_produce)
    t.start()
    t.join(60)
    assert done, "the alteration waited for the pass"
    assert history(conn, topic)[:len(before)] == before
    [(passes, error)] = conn.execute(
        "SELECT passes, last_error FROM streamlog.compaction WHERE topic = %s",
        (topic,)).fetchall()
    assert (passes, error) == (0, None)
    assert "gave way to a transaction waiting for the topic" in srv.log_text()


def test_drop_topic_drops_replaced_segments_too(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp-drop")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})
    produce_segment(conn, topic, [("k", "v%d" % i) for i in range(3)])
    produce_segment(conn, topic, [("k", "last")])
    [(topic_id,)] = conn.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                                 (topic,)).fetchall()
    # in one transaction, so that the cleaner cannot drop the replaced
    # tables first
    with conn.transaction():
        conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
        retired = conn.execute("SELECT relid::oid FROM streamlog.retired_segment "
                               "WHERE topic_id = %s", (topic_id,)).fetchall()
        assert retired
        conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))
    assert conn.execute("SELECT count(*) FROM pg_class WHERE oid = ANY(%s)",
                        ([r[0] for r in retired],)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = 'streamlog_data' "
                        "AND c.relname LIKE %s", ("t%d\\_%%" % topic_id,)).fetchone()[0] == 0
