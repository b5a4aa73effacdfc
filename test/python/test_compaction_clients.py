"""Kafka clients read a compacted topic (issue 11, "Tests"): librdkafka
(confluent-kafka), kafka-python and kafkajs consume it from the beginning
and get exactly the surviving records, at their offsets with the gaps
compaction left, with their values, headers and timestamps; a fetch from an
offset compaction removed starts at the next survivor; offsets committed
by Kafka groups and the lag computed from them are right."""

import base64
import json
import os
import subprocess
import time

import pytest
from psycopg.types.json import Jsonb
from compaction_model import (
    CONF, LogModel, Rec, clean, compacted_config, create_topic, high_watermarks, history,
    make_rng, now_ms, random_records, sql_produce, wait_all_rolled)
from kafka_helpers import ck_consume, ck_headers, kp_consume
from kafkajs import JS_DIR, ensure_kafkajs

DAY_MS = 86_400_000
CREATE_TIME_CK = 1      # confluent_kafka.TIMESTAMP_CREATE_TIME
CREATE_TIME_KP = 0      # kafka-python's timestamp_type for CreateTime


@pytest.fixture(params=["uncompressed", "gzip"])
def compacted(request, make_server, unique_name):
    """A server and a one-partition compacted topic after one pass: (srv,
    topic, survivors as [(offset, key, value, headers, ts_ms)], hwm);
    tombstones survive (delete.retention.ms is a day) and the last record
    is not one.  Its batches are uncompressed, or gzip (the codec every
    client decodes without a plugin)."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("clients")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=DAY_MS,
                                                  compression_type=request.param))
    rng = make_rng()
    keys = [f"key{i}" for i in range(30)]
    model = LogModel()
    for part in range(4):
        recs = random_records(rng, keys, 100, 0.1, f"p{part}", now_ms() - 60_000 + part * 1000)
        sql_produce(conn, topic, recs)
        model.produce(recs)
    wait_all_rolled(conn, topic)
    result = clean(conn, topic)
    rows = history(conn, topic)
    model.check(rows)
    hwm = high_watermarks(conn, topic)[0]
    assert result[0][0] == hwm, f"not cleaned to the high watermark: {result}"
    assert rows[-1].offset == hwm - 1
    offsets = [r.offset for r in rows]
    assert len(offsets) < hwm and offsets != list(range(len(offsets))), "no gaps to read over"
    codec = {"uncompressed": "none"}.get(request.param, request.param)
    assert stored_codecs(srv, topic) == {CODECS[codec]}
    survivors = [(r.offset, r.rec.key.encode(), None if r.rec.value is None else r.rec.value.encode(),
                  list(r.rec.headers), r.rec.ts) for r in rows]
    conn.close()
    return srv, topic, survivors, hwm


def lag(srv, group, topic):
    rows = srv.sql("SELECT committed_offset, high_watermark, lag FROM streamlog.consumer_lag "
                   " WHERE group_id = %s AND topic = %s AND partition = 0", (group, topic))
    return rows[0] if rows else None


def test_librdkafka_and_kafka_python_read_the_survivors(compacted):
    srv, topic, survivors, _ = compacted
    got = ck_consume(srv.kafka_bootstrap, topic, 0, len(survivors))
    assert [(o, k, v, h, ts) for o, k, v, h, (_, ts) in got] == survivors
    assert {t for *_, (t, _) in got} == {CREATE_TIME_CK}

    got = kp_consume(srv.kafka_bootstrap, topic, 0, len(survivors))
    assert [(o, k, v, h, ts) for o, k, v, h, (_, ts) in got] == survivors
    assert {t for *_, (t, _) in got} == {CREATE_TIME_KP}


def test_fetch_from_a_removed_offset_starts_at_the_next_survivor(compacted):
    srv, topic, survivors, _ = compacted
    offsets = [s[0] for s in survivors]
    gaps = [o for o in range(offsets[-1]) if o not in set(offsets)]
    for gap in (gaps[0], gaps[len(gaps) // 2], gaps[-1]):
        expected = [s for s in survivors if s[0] > gap]
        got = ck_consume(srv.kafka_bootstrap, topic, 0, len(expected), offset=gap)
        assert [g[0] for g in got] == [s[0] for s in expected], f"librdkafka from {gap}"
        got = kp_consume(srv.kafka_bootstrap, topic, 0, len(expected), offset=gap)
        assert [g[0] for g in got] == [s[0] for s in expected], f"kafka-python from {gap}"
        sql = srv.sql('SELECT "offset" FROM streamlog.read(%s, 0, %s, 100000)', (topic, gap))
        assert [r[0] for r in sql] == [s[0] for s in expected], f"read() from {gap}"


def test_group_commits_and_lag_over_gaps(compacted, unique_name):
    """A librdkafka group consumer reads everything and commits: lag 0 at
    the high watermark.  A group committed into a gap resumes at the next
    survivor, and its lag counts offsets, gaps included (as Kafka's)."""
    from confluent_kafka import Consumer, TopicPartition
    srv, topic, survivors, hwm = compacted
    group = unique_name("ck-group")
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100})
    got = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(got) < len(survivors):
            assert time.monotonic() < deadline, f"group consumer read {len(got)} records"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert not msg.error(), msg.error()
            got.append((msg.offset(), msg.key(), msg.value(), ck_headers(msg), msg.timestamp()[1]))
        consumer.commit(asynchronous=False)
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed.offset == hwm
    finally:
        consumer.close()
    assert got == survivors
    assert lag(srv, group, topic) == (hwm, hwm, 0)

    offsets = {s[0] for s in survivors}
    gap = next(o for o in range(hwm) if o not in offsets and o > survivors[0][0])
    resumed = unique_name("ck-gap")
    srv.sql("SELECT streamlog.seek(%s, %s, 0, %s)", (resumed, topic, gap))
    assert lag(srv, resumed, topic) == (gap, hwm, hwm - gap)
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": resumed,
                         "auto.offset.reset": "latest", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        msg = None
        while msg is None or msg.error():
            assert time.monotonic() < deadline, "the group committed into a gap read nothing"
            msg = consumer.poll(0.2)
        assert msg.offset() == min(o for o in offsets if o > gap)
    finally:
        consumer.close()


def test_kafkajs_reads_the_survivors_and_commits(compacted, unique_name):
    node = ensure_kafkajs()
    srv, topic, survivors, hwm = compacted
    group = unique_name("kafkajs-group")
    res = subprocess.run([node, os.path.join(JS_DIR, "compacted_consumer.js"),
                          srv.kafka_bootstrap, topic, group, str(survivors[-1][0])],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = []
    for line in res.stdout.splitlines():
        r = json.loads(line)
        dec = (lambda b: None if b is None else base64.b64decode(b))
        got.append((int(r["o"]), dec(r["k"]), dec(r["v"]),
                    [(k, dec(v)) for k, v in r["h"]], int(r["ts"])))
    assert got == survivors
    assert lag(srv, group, topic) == (hwm, hwm, 0)


CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def stored_codecs(srv, topic):
    """{codec id} of the batches stored in the topic's segments"""
    codecs = set()
    for (relid,) in srv.sql("SELECT g.relid::text FROM streamlog.segment g "
                            "  JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s",
                            (topic,)):
        codecs |= {r[0] for r in srv.sql(
            f"SELECT DISTINCT get_byte(batch, 22) & 7 FROM {relid} WHERE chunk = 0")}
    return codecs


@pytest.mark.parametrize("topic_codec,producer_codec,stored", [
    ("producer", "lz4", "lz4"),
    ("zstd", "none", "zstd"),
    ("uncompressed", "gzip", "none"),
])
def test_cleaned_batches_keep_the_topics_codec(make_server, unique_name,
                                               topic_codec, producer_codec, stored):
    """Batches rewritten by the cleaner use the topic's compression.type, or
    the batch's own codec when it is "producer"; a Kafka consumer reads
    the survivors from them."""
    from confluent_kafka import Producer
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name(f"codec-{topic_codec}")
    create_topic(conn, topic, 1, compacted_config(compression_type=topic_codec))
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap,
                         "compression.codec": producer_codec, "linger.ms": 20})
    model = LogModel()
    rng = make_rng()
    for part in range(3):
        recs = random_records(rng, [f"k{i}" for i in range(10)], 100, 0.1, f"c{part}", now_ms())
        for r in recs:
            producer.produce(topic, key=r.key.encode(),
                             value=None if r.value is None else r.value.encode(),
                             headers=list(r.headers), timestamp=r.ts)
        assert producer.flush(30) == 0
        model.produce(recs)
    wait_all_rolled(conn, topic)
    result = clean(conn, topic)
    assert result[0][0] == high_watermarks(conn, topic)[0], result
    rows = history(conn, topic)
    model.check(rows)
    assert len(rows) < model.produced
    assert stored_codecs(srv, topic) == {CODECS[stored]}
    got = ck_consume(srv.kafka_bootstrap, topic, 0, len(rows))
    assert [(o, k.decode(), None if v is None else v.decode(), tuple(h), ts)
            for o, k, v, h, (_, ts) in got] == \
        [(r.offset, r.rec.key, r.rec.value, r.rec.headers, r.rec.ts) for r in rows]
    conn.close()


@pytest.mark.parametrize("batches", ["one batch", "a batch of its own"])
def test_a_partition_whose_tail_was_removed_is_read_to_its_end(make_server, unique_name,
                                                               batches):
    """The last records of a partition are tombstones that compaction
    removed (delete.retention.ms = 0), in the batch of the last survivor or
    in a batch of their own: a consumer must still reach the partition's
    end, as in Kafka, where the last batch stays in the active segment
    until the next append.  librdkafka signals EOF only when its position
    reaches the high watermark."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("tail-gap")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    recs = [Rec("a", "1", (), now_ms()), Rec("b", "1", (), now_ms()), Rec("b", None, (), now_ms())]
    if batches == "one batch":
        sql_produce(conn, topic, recs)
    else:
        sql_produce(conn, topic, recs[:1])
        sql_produce(conn, topic, recs[1:])
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    clean(conn, topic)
    rows = history(conn, topic)
    assert [(r.offset, r.rec.key) for r in rows] == [(0, "a")], rows
    assert high_watermarks(conn, topic) == {0: 3}

    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.wait.max.ms": 100})
    got, eof = [], None
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 20
        while eof is None and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                eof = msg.offset()
            else:
                got.append(msg.offset())
        position = consumer.position([TopicPartition(topic, 0)])[0].offset
    finally:
        consumer.close()
    assert got == [0]
    assert eof == 3, (f"librdkafka never reached the end of the partition: its position "
                      f"stays at {position}, below the high watermark 3")
    conn.close()


def test_log_append_time_survives_the_rewrite(make_server, unique_name):
    """On a LogAppendTime topic the broker's append time is the records'
    timestamp; batches the cleaner rewrites keep it, and keep saying it is
    one, rather than falling back to the producer's CreateTime."""
    from confluent_kafka import Producer
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("append-time")
    # an hour's compaction lag keeps the background cleaner away (the append
    # times are now) until the records have been read as they were written
    create_topic(conn, topic, 1, compacted_config(message_timestamp_type="LogAppendTime",
                                                  min_compaction_lag_ms=3_600_000))
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "linger.ms": 5})
    old = now_ms() - 86_400_000
    for i in range(60):
        producer.produce(topic, key=f"k{i % 6}".encode(), value=f"v{i}".encode(), timestamp=old + i)
        if i % 20 == 19:
            assert producer.flush(30) == 0
    before = ck_consume(srv.kafka_bootstrap, topic, 0, 60)
    assert {t for *_, (t, _) in before} == {2}          # TIMESTAMP_LOG_APPEND_TIME
    assert all(ts > old + 3_600_000 for *_, (_, ts) in before)
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"min.compaction.lag.ms": 0})))
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    rows = history(conn, topic)
    assert [r.offset for r in rows] == list(range(54, 60))
    after = ck_consume(srv.kafka_bootstrap, topic, 0, 6)
    assert after == [b for b in before if b[0] >= 54]
    by_offset = {o: ts for o, *_, (_, ts) in before}
    assert [r.rec.ts for r in rows] == [by_offset[r.offset] for r in rows], "history() timestamps"
    conn.close()


def test_large_records_and_null_header_values_survive(make_server, unique_name):
    """Values of tens of kB (batches stored in several pieces) and header
    values that are null come out of the rewrite as they went in."""
    import random
    from confluent_kafka import Producer
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("large")
    create_topic(conn, topic, 1, compacted_config())
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "linger.ms": 20,
                         "message.max.bytes": 2_000_000})
    rng = random.Random(7)
    model = LogModel()
    for rnd in range(3):
        recs = []
        for i in range(20):
            value = rng.randbytes(rng.randrange(1, 30_000)).hex()
            recs.append(Rec(f"k{i % 8}", value, (("n", None), ("r", str(rnd).encode())),
                            now_ms()))
        for r in recs:
            producer.produce(topic, key=r.key.encode(), value=r.value.encode(),
                             headers=list(r.headers), timestamp=r.ts)
        assert producer.flush(30) == 0
        model.produce(recs)
    model.check(history(conn, topic), "before cleaning")
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    rows = history(conn, topic)
    model.check(rows, "after cleaning")
    assert len(rows) == 8
    got = ck_consume(srv.kafka_bootstrap, topic, 0, 8, conf={"fetch.message.max.bytes": 100_000})
    assert [(o, k.decode(), v.decode(), tuple(h)) for o, k, v, h, _ in got] == \
        [(r.offset, r.rec.key, r.rec.value, r.rec.headers) for r in rows]
    conn.close()


@pytest.mark.parametrize("batches", ["one batch", "a batch of its own"])
def test_sql_group_reaches_the_end_of_a_partition_whose_tail_was_removed(make_server,
                                                                           unique_name, batches):
    """An SQL consumer group that consumed every surviving record of a
    partition whose last records compaction removed is at the end: its
    committed offset is the high watermark and its lag 0."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("tail-gap-sql")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    recs = [Rec("a", "1", (), now_ms()), Rec("b", "1", (), now_ms()), Rec("b", None, (), now_ms())]
    if batches == "one batch":
        sql_produce(conn, topic, recs)
    else:
        sql_produce(conn, topic, recs[:1])
        sql_produce(conn, topic, recs[1:])
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    clean(conn, topic)
    assert [r.offset for r in history(conn, topic)] == [0]
    group = unique_name("sql-group")
    got = [r[0] for r in conn.execute('SELECT "offset" FROM streamlog.consume(%s, %s, 100)',
                                      (group, topic)).fetchall()]
    assert got == [0]
    assert conn.execute('SELECT count(*) FROM streamlog.consume(%s, %s, 100)',
                        (group, topic)).fetchone()[0] == 0
    assert lag(srv, group, topic) == (3, 3, 0), "the group is stuck before the removed tail"
    conn.close()
