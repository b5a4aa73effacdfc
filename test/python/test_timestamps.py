"""Record timestamps are computed from the records, never taken from a batch
header: a header whose maxTimestamp is -1, 0 or simply wrong, and legacy
message sets (v0 has no timestamp at all), are stored with the true
maximum, survive retention, and are found by every time lookup.  Records
without a timestamp read as NULL in SQL and -1 over Kafka.  The
message.timestamp.*.max.ms configs refuse out-of-range CreateTime
timestamps with INVALID_TIMESTAMP (Kafka) or a clear SQL error."""

import struct
import zlib

import psycopg
import pytest
from psycopg.types.json import Jsonb

import kafka_helpers as kh
from kafka_helpers import i8, i16, i32, i64
from pgserver import wait_until

INVALID_TIMESTAMP = 32
HOUR = 3600 * 1000
CONF = {"streamlog.retention_check_interval": "200ms"}


# -- batches and message sets built by hand ------------------------------------

def with_max_timestamp(batch, max_ts):
    """The batch with its header's maxTimestamp replaced, and a valid CRC of
    what is then sent (so only the timestamp is wrong)."""
    b = bytearray(batch)
    b[35:43] = i64(max_ts)
    b[17:21] = struct.pack(">I", kh.crc32c(bytes(b[21:])))
    return bytes(b)


def batch_of(values, timestamps, max_ts=None):
    batch = kh.record_batch([(None, v.encode(), [], ts) for v, ts in zip(values, timestamps)])
    return batch if max_ts is None else with_max_timestamp(batch, max_ts)


def legacy_message_set(values, magic, timestamps=None):
    """A magic 0 or 1 message set, uncompressed, offsets 0..n-1."""
    out = b""
    for i, v in enumerate(values):
        body = i8(magic) + i8(0)
        if magic == 1:
            body += i64(timestamps[i])
        body += i32(-1) + i32(len(v)) + v.encode()
        message = struct.pack(">I", zlib.crc32(body)) + body
        out += i64(i) + i32(len(message)) + message
    return out


def produce_request_v2(correlation_id, topic, partition, records):
    """Produce v2: a legacy message set to one partition."""
    body = i16(-1) + i32(10000)
    body += kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: i32(p) + kh.kbytes(records)))
    return kh.request_frame(kh.PRODUCE, 2, correlation_id, body)


def parse_produce(body):
    """{(topic, partition): (error_code, base_offset, log_append_time)} of
    a Produce v2 or v3 response."""
    r = kh.Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64())))):
        for p, err, base, append_time in parts:
            out[(topic, p)] = (err, base, append_time)
    return out


def produce(client, topic, partition, batch):
    """(error_code, base_offset, log_append_time) of a Produce v3"""
    return parse_produce(client.call(kh.produce_request, topic, [(partition, batch)]))[
        (topic, partition)]


def produce_legacy(client, topic, partition, message_set):
    return parse_produce(client.call(produce_request_v2, topic, partition, message_set))[
        (topic, partition)]


def fetch_batches(client, topic, partition):
    """[(header fields, raw bytes)] of the stored batches, via Fetch v4"""
    err, _hw, records = kh.parse_fetch_v4(
        client.call(kh.fetch_request, topic, partition, 0))[(topic, partition)]
    assert err == kh.NONE
    out = []
    pos = 0
    while pos < len(records):
        length = struct.unpack(">i", records[pos + 8:pos + 12])[0]
        raw = records[pos:pos + 12 + length]
        attributes, = struct.unpack(">h", raw[21:23])
        crc, = struct.unpack(">I", raw[17:21])
        base_ts, max_ts = struct.unpack(">qq", raw[27:43])
        out.append(({"attributes": attributes, "crc": crc, "crc_ok": crc == kh.crc32c(raw[21:]),
                     "base_timestamp": base_ts, "max_timestamp": max_ts}, raw))
        pos += 12 + length
    return out


def list_offset(client, topic, partition, ts):
    """(error, timestamp, offset) of a ListOffsets v1 by time"""
    return kh.parse_list_offsets_v1(client.call(kh.list_offsets_request, topic, partition, ts))[
        (topic, partition)]


def create_topic(conn, topic, partitions, config=None):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config or {})))


def rows(conn, topic, partition):
    """[(offset, ts_ms or None, value)] read with SQL"""
    return [(off, None if ts is None else int(ts), bytes(v).decode()) for off, ts, v in conn.execute(
        'SELECT "offset", (extract(epoch FROM ts) * 1000)::bigint, value '
        "FROM streamlog.read(%s, %s, 0, 100000)", (topic, partition)).fetchall()]


def offset_for_time(conn, topic, partition, ts_ms):
    return conn.execute("SELECT streamlog.offset_for_time(%s, %s, to_timestamp(%s / 1000.0))",
                        (topic, partition, ts_ms)).fetchone()[0]


def history_offsets(conn, topic, partition, from_ts=None, to_ts=None):
    return [r[0] for r in conn.execute(
        'SELECT "offset" FROM streamlog.history(%s, ARRAY[%s], '
        "from_ts => to_timestamp(%s / 1000.0), to_ts => to_timestamp(%s / 1000.0)) "
        'ORDER BY "offset"', (topic, partition, from_ts, to_ts)).fetchall()]


def wait_for_retention_passes(conn, witness):
    """Return once the cleaner has made at least one whole pass over every
    partition that began after this call: the witness topic gets a record
    two hours old twice, and each time the cleaner drops it."""
    for round_ in range(2):
        conn.execute("SELECT streamlog.produce(%s, NULL, 'old', partition => 0, "
                     "ts => now() - interval '2 hours')", (witness,))
        wait_until(lambda: conn.execute(
            "SELECT log_start_offset FROM streamlog.partitions WHERE topic = %s",
            (witness,)).fetchone()[0] >= round_ + 1, 30, "the cleaner to drop the old record")


# -- the tests ------------------------------------------------------------------------

def test_batches_with_wrong_max_timestamp_survive_retention(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("stamps")
    witness = unique_name("witness")
    create_topic(conn, topic, 5, {"retention.ms": HOUR})
    create_topic(conn, witness, 1, {"retention.ms": HOUR})
    now = kh.now_ms()
    stamps = [now - 3000, now - 1000, now - 2000]
    values = ["a", "b", "c"]

    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert produce(c, topic, 0, batch_of(values, stamps, max_ts=-1))[0] == kh.NONE
        assert produce(c, topic, 1, batch_of(values, stamps, max_ts=0))[0] == kh.NONE
        assert produce(c, topic, 2, batch_of(values, stamps, max_ts=now - 2 * HOUR))[0] == kh.NONE
        assert produce_legacy(c, topic, 3, legacy_message_set(values, 0))[0] == kh.NONE
        assert produce_legacy(c, topic, 4, legacy_message_set(values, 1, stamps))[0] == kh.NONE

    wait_for_retention_passes(conn, witness)

    for p in range(5):
        assert [v for _, _, v in rows(conn, topic, p)] == values, f"partition {p}"
        state = conn.execute(
            "SELECT log_start_offset, high_watermark, segments FROM streamlog.partitions "
            "WHERE topic = %s AND partition = %s", (topic, p)).fetchone()
        # nothing dropped, and no segment rolled over a timestamp of -1
        assert state == (0, 3, 1), f"partition {p}"


def test_max_timestamp_is_computed_and_time_lookups_find_records(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("lookup")
    create_topic(conn, topic, 4)
    t0 = kh.now_ms() - 60000
    stamps = [t0, t0 + 20, t0 + 10]

    with kh.RawClient(srv.kafka_bootstrap) as c:
        for p, wrong in enumerate((-1, 0, t0 - 5000, t0 + 365 * 24 * HOUR)):
            assert produce(c, topic, p, batch_of(["a", "b", "c"], stamps, max_ts=wrong))[:2] == \
                (kh.NONE, 0)

        for p in range(4):
            [(header, _raw)] = fetch_batches(c, topic, p)
            # the stored header carries the true maximum, with a CRC to match
            assert header["max_timestamp"] == t0 + 20, f"partition {p}"
            assert header["crc_ok"], f"partition {p}"
            assert list_offset(c, topic, p, t0 + 5) == (kh.NONE, t0 + 20, 1)
            assert list_offset(c, topic, p, t0 + 15) == (kh.NONE, t0 + 20, 1)
            assert list_offset(c, topic, p, t0 + 21) == (kh.NONE, -1, -1)

    for p in range(4):
        assert rows(conn, topic, p) == [(0, t0, "a"), (1, t0 + 20, "b"), (2, t0 + 10, "c")]
        assert offset_for_time(conn, topic, p, t0 + 5) == 1
        assert offset_for_time(conn, topic, p, t0 + 10) == 1
        assert offset_for_time(conn, topic, p, t0 + 21) is None
        assert history_offsets(conn, topic, p, from_ts=t0 + 10) == [1, 2]
        assert history_offsets(conn, topic, p, from_ts=t0 + 11, to_ts=t0 + 30) == [1]


def test_records_without_timestamp_read_as_null_and_never_match_time(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("nots")
    create_topic(conn, topic, 1)
    t1 = kh.now_ms() - 1000

    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert produce_legacy(c, topic, 0, legacy_message_set(["x", "y"], 0))[:2] == (kh.NONE, 0)
        # a v2 batch whose records say -1 themselves (timestamp delta 0 from -1)
        assert produce(c, topic, 0, batch_of(["z"], [-1]))[:2] == (kh.NONE, 2)
        assert produce(c, topic, 0, batch_of(["w"], [t1]))[:2] == (kh.NONE, 3)

        batches = fetch_batches(c, topic, 0)
        assert [h["max_timestamp"] for h, _ in batches] == [-1, -1, t1]
        assert [h["base_timestamp"] for h, _ in batches] == [-1, -1, t1]
        assert all(h["crc_ok"] for h, _ in batches)
        assert list_offset(c, topic, 0, 0) == (kh.NONE, t1, 3)

    msgs = kh.kp_consume(srv.kafka_bootstrap, topic, 0, 4)
    assert [(value.decode(), ts) for _, _, value, _, (_, ts) in msgs] == \
        [("x", -1), ("y", -1), ("z", -1), ("w", t1)]

    assert rows(conn, topic, 0) == [(0, None, "x"), (1, None, "y"), (2, None, "z"), (3, t1, "w")]
    assert offset_for_time(conn, topic, 0, 0) == 3
    assert history_offsets(conn, topic, 0, to_ts=t1 + 1) == [3]
    assert history_offsets(conn, topic, 0, from_ts=-HOUR * 24 * 365) == [3]
    assert history_offsets(conn, topic, 0) == [0, 1, 2, 3]


def test_well_formed_batches_are_stored_byte_exact(make_server, unique_name):
    srv = make_server()
    topic = unique_name("exact")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    now = kh.now_ms()
    sent = batch_of(["a", "b", "c"], [now - 10, now, now - 5])

    import confluent_kafka
    p = confluent_kafka.Producer({"bootstrap.servers": srv.kafka_bootstrap, "linger.ms": 50,
                                  "compression.type": "none"})
    for i, ts in enumerate((now - 30, now - 10, now - 20)):
        p.produce(topic, f"ck{i}".encode(), partition=0, timestamp=ts)
    assert p.flush(30) == 0

    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert produce(c, topic, 0, sent)[:2] == (kh.NONE, 3)
        batches = fetch_batches(c, topic, 0)
    *client_batches, (_, raw) = batches
    assert raw[8:] == sent[8:], "everything but the base offset is as sent"
    assert raw[:8] == i64(3)
    # librdkafka's batches (one or more) come back whole, with their CRCs
    assert client_batches and all(h["crc_ok"] for h, _ in client_batches)
    assert max(h["max_timestamp"] for h, _ in client_batches) == now - 10


def test_out_of_range_timestamps_are_refused(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    bounded = unique_name("bounded")
    legacy = unique_name("difference")
    create_topic(conn, bounded, 1, {"message.timestamp.before.max.ms": HOUR,
                                    "message.timestamp.after.max.ms": 60000})
    create_topic(conn, legacy, 1, {"message.timestamp.difference.max.ms": 60000})
    now = kh.now_ms()

    with kh.RawClient(srv.kafka_bootstrap) as c:
        # one bad record fails its whole batch, and stores nothing
        for topic, stamps in ((bounded, [now, now - 2 * HOUR]),
                              (bounded, [now + 10 * 60000, now]),
                              (legacy, [now, now - 10 * 60000]),
                              (legacy, [now + 10 * 60000])):
            err = produce(c, topic, 0, batch_of([str(i) for i in range(len(stamps))], stamps))[0]
            assert err == INVALID_TIMESTAMP, (topic, stamps)
        assert produce_legacy(c, bounded, 0,
                              legacy_message_set(["old"], 1, [now - 2 * HOUR]))[0] == INVALID_TIMESTAMP
        assert kh.high_watermark(srv, bounded) == 0
        assert kh.high_watermark(srv, legacy) == 0

        # within bounds, and records without a timestamp, are accepted (as Kafka)
        assert produce(c, bounded, 0, batch_of(["ok"], [now - 30 * 60000]))[:2] == (kh.NONE, 0)
        assert produce(c, bounded, 0, batch_of(["none"], [-1]))[:2] == (kh.NONE, 1)
        assert produce_legacy(c, legacy, 0, legacy_message_set(["v0"], 0))[:2] == (kh.NONE, 0)

    # a real client gets the error too (Produce v8+, with the record named)
    import confluent_kafka
    reports = []
    producer = confluent_kafka.Producer({"bootstrap.servers": srv.kafka_bootstrap})
    producer.produce(bounded, b"ck-old", partition=0, timestamp=now - 2 * HOUR,
                     on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(30) == 0
    assert [err.code() for err in reports] == [confluent_kafka.KafkaError.INVALID_TIMESTAMP]

    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT streamlog.produce(%s, NULL, 'old', ts => now() - interval '2 hours')",
                     (bounded,))
    assert exc.value.sqlstate == "22008"
    assert "message.timestamp.before.max.ms" in exc.value.diag.message_hint
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT streamlog.produce(%s, NULL, 'future', ts => now() + interval '1 hour')",
                     (legacy,))
    assert exc.value.sqlstate == "22008"
    assert "message.timestamp.after.max.ms" in exc.value.diag.message_hint
    conn.execute("SELECT streamlog.produce(%s, NULL, 'fine', ts => now() - interval '10 minutes')",
                 (bounded,))
    assert [v for _, _, v in rows(conn, bounded, 0)] == ["ok", "none", "fine"]


def test_log_append_time_is_the_stamp_the_response_reports(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("lat")
    create_topic(conn, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    before = kh.now_ms()
    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, base, append_time = produce(c, topic, 0, batch_of(["a", "b"], [-1, 5]))
        assert (err, base) == (kh.NONE, 0)
        err, base, legacy_append_time = produce_legacy(c, topic, 0, legacy_message_set(["c"], 0))
        assert (err, base) == (kh.NONE, 2)
        (h1, _), (h2, _) = fetch_batches(c, topic, 0)
    assert before <= append_time <= kh.now_ms()
    assert h1["max_timestamp"] == append_time and h1["attributes"] & 0x08
    assert h2["max_timestamp"] == legacy_append_time
    assert rows(conn, topic, 0) == [(0, append_time, "a"), (1, append_time, "b"),
                                    (2, legacy_append_time, "c")]
