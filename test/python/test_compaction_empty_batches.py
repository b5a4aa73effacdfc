"""Empty batches the cleaner keeps (issue 11): the last batch of an
idempotent producer whose records all went (Kafka's BatchRetention
RETAIN_EMPTY), and the batch that holds the log end, emptied.  A batch
with no records, its base and last offsets kept, must be read right:
librdkafka, kafka-python and kafkajs step over it, SQL readers return no
row for it and no error, ListOffsets/offset_for_time and latest() look past
it, and the cleaner drops a producer's empty batch once the producer is
superseded or its state expired (streamlog.producer_id_expiration_ms)."""

import base64
import json
import os
import subprocess

import kafka_helpers as kh
from compaction_model import (
    CONF, Rec, clean, compacted_config, create_topic, high_watermarks, history, now_ms,
    sql_produce, wait_all_rolled)
from kafka_helpers import ck_consume, kp_consume
from kafkajs import JS_DIR, ensure_kafkajs
from pgserver import wait_until
from test_compaction_clients import lag
from test_kafka_idempotence import init_producer, produce

# Where the record count of a RecordBatch v2 starts (0-based)
RECORD_COUNT_AT = 57


def empty_batches(srv, topic):
    """[(base_offset, last_offset)] of the stored batches with no record"""
    out = []
    for (relid,) in srv.sql("SELECT g.relid::text FROM streamlog.segment g "
                            "  JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s",
                            (topic,)):
        out += srv.sql(f"SELECT base_offset, last_offset FROM {relid} "
                       f" WHERE chunk = 0 AND substring(batch from {RECORD_COUNT_AT + 1} for 4)"
                       f"       = '\\x00000000'::bytea")
    return sorted(tuple(r) for r in out)


def make_log(srv, conn, topic, t0):
    """Offsets 0-1: an idempotent producer's only batch, key k; 2: k again
    (SQL); 3: x; 4: a tombstone of y, alone in the last batch.  After two
    passes (delete.retention.ms = 0) 2 and 3 survive, [0, 1] stays as the
    producer's empty last batch and [4, 4] as the log end's."""
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        batch = kh.record_batch([(b"k", b"old-0", [], t0), (b"k", b"old-1", [], t0)],
                                producer=(pid, epoch, 0))
        assert produce(c, topic, batch) == (kh.NONE, 0)
    sql_produce(conn, topic, [Rec("k", "new", (), t0 + 1000), Rec("x", "1", (), t0 + 2000)])
    sql_produce(conn, topic, [Rec("y", None, (), t0 + 3000)])
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    clean(conn, topic)
    return pid, epoch, batch


def test_empty_batches_are_kept_and_read_right(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("empty-batches")
    t0 = now_ms() - 60_000
    make_log(srv, conn, topic, t0)
    assert [(r.offset, r.rec.key) for r in history(conn, topic)] == [(2, "k"), (3, "x")]
    assert empty_batches(srv, topic) == [(0, 1), (4, 4)]
    assert high_watermarks(conn, topic) == {0: 5}

    # SQL readers: no row for an empty batch, and no error
    for start in (0, 1, 4):
        got = srv.sql('SELECT "offset" FROM streamlog.read(%s, 0, %s, 100)', (topic, start))
        assert [r[0] for r in got] == [o for o in (2, 3) if o >= start], f"read() from {start}"
    group = unique_name("sql-group")
    got = conn.execute('SELECT "offset" FROM streamlog.consume(%s, %s, 100)',
                       (group, topic)).fetchall()
    assert [r[0] for r in got] == [2, 3]
    assert conn.execute('SELECT count(*) FROM streamlog.consume(%s, %s, 100)',
                        (group, topic)).fetchone()[0] == 0
    assert lag(srv, group, topic) == (5, 5, 0)

    # Timestamps: the empty batch at 0 is no answer for its records' time
    for ts, expected in ((t0, 2), (t0 + 1000, 2), (t0 + 2000, 3), (t0 + 3000, None)):
        got = srv.sql("SELECT streamlog.offset_for_time(%s, 0, "
                      "       'epoch'::timestamptz + %s * interval '1 ms')", (topic, ts))[0][0]
        assert got == expected, f"offset_for_time({ts - t0} ms after t0)"
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, request_timeout_ms=15000)
    try:
        tp = TopicPartition(topic, 0)
        found = consumer.offsets_for_times({tp: t0})[tp]
        assert found is not None and found.offset == 2, found
    finally:
        consumer.close()

    # latest(): the survivors, nothing of the empty batches
    assert sorted(r[0] for r in srv.sql("SELECT key FROM streamlog.latest(%s)", (topic,))) \
        == [b"k", b"x"]
    assert srv.sql("SELECT value FROM streamlog.latest(%s, 'k'::text)", (topic,))[0][0] == b"new"

    # Kafka clients step over both, from the start and from inside them
    for start in (0, 1):
        assert [g[0] for g in ck_consume(srv.kafka_bootstrap, topic, 0, 2, offset=start)] == [2, 3]
        assert [g[0] for g in kp_consume(srv.kafka_bootstrap, topic, 0, 2, offset=start)] == [2, 3]
    assert consume_to_eof(srv, topic) == ([2, 3], 5), "librdkafka did not reach the end"
    assert kafka_python_position_after(srv, topic, 2) == 5, \
        "kafka-python did not move past the empty batch at the log end"

    node = ensure_kafkajs()
    res = subprocess.run([node, os.path.join(JS_DIR, "compacted_consumer.js"),
                          srv.kafka_bootstrap, topic, unique_name("kafkajs"), "3"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(int(r["o"]), base64.b64decode(r["k"])) for r in got] == [(2, b"k"), (3, b"x")]
    conn.close()


def consume_to_eof(srv, topic):
    """Offsets librdkafka reads from partition 0 until it signals the end,
    and the offset of that end (None if it never came)."""
    import time
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
    finally:
        consumer.close()
    return got, eof


def kafka_python_position_after(srv, topic, count):
    """kafka-python's position once it read count records and polled on
    until its position stops moving below the high watermark"""
    import time
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             request_timeout_ms=15000)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        seen = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen += sum(len(r) for r in consumer.poll(timeout_ms=200).values())
            if seen >= count and consumer.position(tp) >= 5:
                break
        return consumer.position(tp)
    finally:
        consumer.close()


def test_a_producers_empty_batch_goes_once_superseded_or_expired(make_server, unique_name):
    """The producer's empty batch goes when the producer writes a later
    batch (it is no longer its last), or when its state expired: appended
    longer ago than streamlog.producer_id_expiration_ms."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("empty-superseded")
    t0 = now_ms() - 60_000
    pid, epoch, _ = make_log(srv, conn, topic, t0)
    assert empty_batches(srv, topic) == [(0, 1), (4, 4)]
    with kh.RawClient(srv.kafka_bootstrap) as c:
        later = kh.record_batch([(b"x", b"2", [], t0 + 4000)], producer=(pid, epoch, 2))
        assert produce(c, topic, later) == (kh.NONE, 5)
    sql_produce(conn, topic, [Rec("z", "1", (), t0 + 5000)])
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    # [0, 1] is no longer the producer's last batch, [4, 4] no longer the
    # log end's; [6, 6] holds the log end and keeps its record
    assert empty_batches(srv, topic) == []
    assert [r.offset for r in history(conn, topic)] == [2, 5, 6]

    other = unique_name("empty-expired")
    make_log(srv, conn, other, t0)
    assert empty_batches(srv, other) == [(0, 1), (4, 4)]
    conn.execute("ALTER SYSTEM SET streamlog.producer_id_expiration_ms = 1")
    conn.execute("SELECT pg_reload_conf()")
    sql_produce(conn, other, [Rec("z", "1", (), t0 + 5000)])
    wait_all_rolled(conn, other)
    wait_until(lambda: conn.execute("SHOW streamlog.producer_id_expiration_ms").fetchone()[0]
               == "1ms", 30, "the new producer_id_expiration_ms to be seen", interval=0.1)
    clean(conn, other)
    assert empty_batches(srv, other) == []
    assert [r.offset for r in history(conn, other)] == [2, 3, 5]
    conn.close()
