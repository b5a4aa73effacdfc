"""Real Kafka clients against streamlog's broker: kcat and confluent-kafka
(librdkafka 2.0.2), kafka-python 2.0.2 and kafkajs 2.2.4, cross-checked with
the SQL API.

Consumers here use manual assignment; consumer groups, kafkajs's consumer
among them, are tested in test_kafka_groups.py.
"""

import json
import os
import subprocess
import threading
import time
import zlib

import pytest
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

import kafka_helpers as kh
from kafkajs import JS_DIR, ensure_kafkajs

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_ID = {"none": 0, "producer": 0, "uncompressed": 0,
            "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CREATE_TIME_CK = 1   # confluent_kafka.TIMESTAMP_CREATE_TIME
CREATE_TIME_KP = 0   # kafka-python ConsumerRecord.timestamp_type


# -- helpers -------------------------------------------------------------------------

def sample_records(n, base_ts):
    """[(key, value, headers, ts_ms)] covering null and empty keys and
    values, binary data, duplicate header keys, null header values, records
    without headers and timestamps out of order."""
    records = []
    for i in range(n):
        if i % 9 == 3:
            key = None
        elif i % 9 == 4:
            key = b""
        else:
            key = f"key-{i}-\u00e9\u65e5".encode()
        if i % 11 == 5:
            value = None
        elif i % 11 == 6:
            value = b""
        elif i % 2:
            value = bytes(range(256)) * 2
        else:
            value = (f"value {i} " * 40).encode()
        if i % 5 == 0:
            headers = []
        else:
            headers = [("dup", b"first"), ("dup", b"second"), ("null", None),
                       ("bin", b"\x00\xff" + bytes([i % 256])), ("empty", b"")]
        ts = base_ts + (i * 37) % 200
        records.append((key, value, headers, ts))
    return records


def create_topic(server, name, partitions=1, config=None):
    server.sql("SELECT streamlog.create_topic(%s, %s, %s::jsonb)",
               (name, partitions, json.dumps(config or {})))


def ck_produce(bootstrap, topic, records, partition=0, conf=None, timeout=20.0):
    """Produce records with confluent-kafka; returns the delivery reports as
    [(error, partition, offset)] in the order of the records."""
    settings = {"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"}
    settings.update(conf or {})
    producer = Producer(settings)
    # topic metadata first: a first produce() may otherwise wait for
    # librdkafka's 1 s topic scan
    producer.list_topics(topic, timeout=10)
    reports = [None] * len(records)

    def report(i):
        def cb(err, msg):
            reports[i] = (err, msg.partition(), msg.offset())
        return cb

    for i, (key, value, headers, ts) in enumerate(records):
        kwargs = {"key": key, "value": value, "on_delivery": report(i)}
        if headers:
            kwargs["headers"] = headers
        if ts is not None:
            kwargs["timestamp"] = ts
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
    left = producer.flush(timeout)
    assert left == 0, f"{left} messages not delivered in {timeout}s"
    return reports


def sql_produce(server, topic, records, partition=0):
    """Produce records through streamlog.produce_record() in one transaction."""
    with server.connect() as conn:
        with conn.transaction():
            for key, value, headers, ts in records:
                conn.execute(
                    "SELECT streamlog.produce_record(%s, %s::bytea, %s::bytea, "
                    "  (SELECT array_agg(ROW(k, v)::streamlog.header ORDER BY o) "
                    "     FROM unnest(%s::text[], %s::bytea[]) WITH ORDINALITY AS u(k, v, o)), "
                    "  %s::integer, %s)",
                    (topic, key, value, [h[0] for h in headers], [h[1] for h in headers],
                     partition, kh.ms_to_datetime(ts)))


def as_sql_rows(records, first_offset=0):
    """The rows sql_records() returns for records stored from first_offset."""
    return [(first_offset + i, ts, key, value, list(headers))
            for i, (key, value, headers, ts) in enumerate(records)]


def consumed_as_sql_rows(messages, create_time):
    rows = []
    for offset, key, value, headers, (ts_type, ts) in messages:
        assert ts_type == create_time, f"timestamp type {ts_type} at offset {offset}"
        rows.append((offset, ts, key, value, headers))
    return rows


# What librdkafka 2.0.2 needs from the broker's ApiVersions to really use
# a codec (rd_kafka_msgset_writer_select_MsgVersion): gzip, snappy and lz4 need
# Produce v0 in range (it checks [0, 0]), lz4 also its LZ4 feature, which
# it derives from FindCoordinator v0 (src/rdkafka_feature.c); zstd needs
# Produce v7 and Fetch v10.  Otherwise it silently sends uncompressed.
LIBRDKAFKA_CODEC_NEEDS = {
    "gzip": [(kh.PRODUCE, 0)],
    "snappy": [(kh.PRODUCE, 0)],
    "lz4": [(kh.PRODUCE, 0), (kh.FIND_COORDINATOR, 0)],
    "zstd": [(kh.PRODUCE, 7), (kh.FETCH, 10)],
}


def xfail_unless_librdkafka_can_compress(request, bootstrap, codec):
    advertised = kh.advertised_versions(bootstrap)
    missing = [f"{kh.API_NAMES[key]} v{v}" for key, v in LIBRDKAFKA_CODEC_NEEDS[codec]
               if not (key in advertised and advertised[key][0] <= v <= advertised[key][1])]
    if missing:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=(
            f"the broker does not advertise {', '.join(missing)}, so librdkafka 2.0.2 "
            f"silently sends {codec} batches uncompressed (Kafka advertises them)")))


# -- kcat -------------------------------------------------------------------------------

def test_kcat_metadata_lists_topic_partitions_and_broker(server, unique_name):
    topic = unique_name("kcat-md")
    create_topic(server, topic, 3)
    md = json.loads(kh.kcat(["-b", server.kafka_bootstrap, "-L", "-J", "-t", topic]).stdout)
    assert md["brokers"] == [{"id": 1, "name": server.kafka_bootstrap}]
    assert md["controllerid"] == 1
    [t] = md["topics"]
    assert t["topic"] == topic
    assert "error" not in t, t
    assert [p["partition"] for p in t["partitions"]] == [0, 1, 2]
    for p in t["partitions"]:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}]
        assert p["isrs"] == [{"id": 1}]

    # all topics: ours is among them
    md = json.loads(kh.kcat(["-b", server.kafka_bootstrap, "-L", "-J"]).stdout)
    assert topic in [t["topic"] for t in md["topics"]]


def test_kcat_keyed_produce_uses_crc32_and_reads_back(server, unique_name):
    topic = unique_name("kcat-keys")
    nparts = 6
    create_topic(server, topic, nparts, {"partitioner": "crc32"})
    murmur_topic = unique_name("kcat-murmur")
    create_topic(server, murmur_topic, nparts)
    # librdkafka's default partitioner is consistent_random: zlib CRC-32
    assert zlib.crc32(b"hejsan") == 0xD077037E

    keys = [b"hejsan", b"23456", b"this is another string with more length to it perhaps"]
    keys += [f"k{i}-\u00fc\u00df".encode() for i in range(40)]
    values = [f"value {i}\twith tab \u2603 and \\ backslash".encode() for i in range(len(keys))]
    lines = b"".join(k + b":" + v + b"\n" for k, v in zip(keys, values))
    kh.kcat(["-b", server.kafka_bootstrap, "-P", "-t", topic, "-K:"], input_data=lines)

    stored = {}
    for p in range(nparts):
        for off, _ts, key, value, headers in kh.sql_records(server, topic, p):
            stored[key] = (p, off, value)
            assert headers == []
    assert set(stored) == set(keys)
    differs_from_murmur2 = 0
    for key, value in zip(keys, values):
        p, _, stored_value = stored[key]
        assert stored_value == value
        assert p == zlib.crc32(key) % nparts, key
        assert p == server.sql("SELECT streamlog.partition_for(%s, %s::bytea)", (topic, key))[0][0]
        murmur_p = server.sql("SELECT streamlog.partition_for(%s, %s::bytea)",
                              (murmur_topic, key))[0][0]
        differs_from_murmur2 += murmur_p != p
    assert differs_from_murmur2 > 0

    # kcat reads back every partition, byte for byte, in offset order
    for p in range(nparts):
        out = kh.kcat(["-b", server.kafka_bootstrap, "-C", "-t", topic, "-p", str(p),
                       "-o", "beginning", "-e", "-q", "-X", "fetch.wait.max.ms=10",
                       "-f", "%o\\x1f%k\\x1f%s\\x1e"]).stdout
        got = [rec.split(b"\x1f") for rec in out.split(b"\x1e") if rec]
        expected = sorted((off, key, value) for key, (pp, off, value) in stored.items() if pp == p)
        assert [(int(o), k, v) for o, k, v in got] == expected


# -- confluent-kafka ----------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_confluent_producer_round_trip(server, unique_name, codec):
    topic = unique_name(f"ck-{codec}")
    records = sample_records(40, kh.now_ms() - 60_000)
    reports = ck_produce(server.kafka_bootstrap, topic, records,
                         conf={"compression.codec": codec})
    assert [(err, p) for err, p, _ in reports] == [(None, 0)] * len(records)
    assert [off for _, _, off in reports] == list(range(len(records)))

    expected = as_sql_rows(records)
    consumed = kh.ck_consume(server.kafka_bootstrap, topic, 0, len(records))
    assert consumed_as_sql_rows(consumed, CREATE_TIME_CK) == expected
    assert kh.sql_records(server, topic, 0) == expected


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_confluent_producer_compresses(server, unique_name, request, codec):
    xfail_unless_librdkafka_can_compress(request, server.kafka_bootstrap, codec)
    topic = unique_name(f"ck-stored-{codec}")
    records = [(b"k", b"compressible " * 50, [], None)] * 20
    ck_produce(server.kafka_bootstrap, topic, records,
               conf={"compression.codec": codec, "linger.ms": 50})
    codecs = kh.stored_batch_codecs(server, topic)
    assert codecs and set(codecs) == {CODEC_ID[codec]}


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
@pytest.mark.parametrize("compression",
                         ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"])
def test_sql_produced_records_consumed(server, unique_name, client, compression):
    if client == "kafka-python" and compression in ("snappy", "lz4", "zstd"):
        import kafka.codec
        if not getattr(kafka.codec, f"has_{compression}")():
            pytest.skip(f"kafka-python has no {compression} codec here "
                        f"(the optional Python module for it is not installed)")
    topic = unique_name(f"sql-{compression}")
    create_topic(server, topic, 1, {"compression.type": compression})
    records = sample_records(30, kh.now_ms() - 60_000)
    sql_produce(server, topic, records)
    assert set(kh.stored_batch_codecs(server, topic)) == {CODEC_ID[compression]}

    expected = as_sql_rows(records)
    assert kh.sql_records(server, topic, 0) == expected
    if client == "confluent":
        consumed = consumed_as_sql_rows(
            kh.ck_consume(server.kafka_bootstrap, topic, 0, len(records)), CREATE_TIME_CK)
    else:
        # kafka-python checks every batch CRC (check_crcs=True)
        consumed = consumed_as_sql_rows(
            kh.kp_consume(server.kafka_bootstrap, topic, 0, len(records)), CREATE_TIME_KP)
    assert consumed == expected


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_acks_deliver(server, unique_name, acks):
    topic = unique_name(f"ck-acks{acks}")
    create_topic(server, topic, 3)
    records = [(f"k{i}".encode(), f"v{i}".encode(), [], None) for i in range(60)]
    reports = []
    for p in range(3):
        reports += ck_produce(server.kafka_bootstrap, topic, records[p::3], partition=p,
                              conf={"acks": acks, "linger.ms": 5})
    assert all(err is None for err, _, _ in reports), reports
    if acks != "0":
        for p in range(3):
            assert sorted(off for _, pp, off in reports if pp == p) == list(range(20))
    # with acks=0 nothing confirms the write: wait for it to show up
    kh.wait_until(lambda: sum(kh.high_watermark(server, topic, p) for p in range(3)) == 60,
                  10, "60 records")
    for p in range(3):
        assert [(k, v) for _, _, k, v, _ in kh.sql_records(server, topic, p)] == \
            [(k, v) for k, v, _, _ in records[p::3]]


def test_acks_all_survive_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("ck-p5")
    create_topic(srv, topic, 3)
    acked = {}
    lock = threading.Lock()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    producer = Producer({
        "bootstrap.servers": srv.kafka_bootstrap, "acks": "all", "linger.ms": 2,
        "message.timeout.ms": 4000, "reconnect.backoff.max.ms": 200, "log_level": 0,
    })
    for i in range(300):
        producer.produce(topic, key=f"before-{i}".encode(), value=f"v{i}".encode(),
                         partition=i % 3, on_delivery=on_delivery)
    assert producer.flush(15) == 0
    assert len(acked) == 300

    # keep producing while the server is killed: whatever was acknowledged
    # before the kill must be there after recovery
    stop = threading.Event()

    def produce_more():
        i = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=f"during-{i}".encode(), value=f"w{i}".encode(),
                                 partition=i % 3, on_delivery=on_delivery)
            except BufferError:
                pass
            producer.poll(0.001)
            i += 1

    thread = threading.Thread(target=produce_more)
    thread.start()
    try:
        kh.wait_until(lambda: len(acked) > 400, 15, "acknowledgements while producing")
        srv.kill9()
    finally:
        stop.set()
        thread.join()
    producer.purge()        # the rest would only fail: the server is down
    producer.flush(5)
    with lock:
        snapshot = dict(acked)
    srv.start()

    for p in range(3):
        stored = {off: (k, v) for off, _, k, v, _ in kh.sql_records(srv, topic, p)}
        for (pp, off), kv in snapshot.items():
            if pp == p:
                assert stored.get(off) == kv, f"acknowledged record {p}/{off} {kv} lost"
    # and the broker serves them again
    consumed = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 100)
    assert [(k, v) for _, k, v, _, _ in consumed] == \
        [snapshot[(0, off)] for off in range(100)]


# Long polls in the tests below wait this long on the broker: far beyond the
# deadlines the tests give the record to arrive, so that only the commit's
# wake-up can deliver it in time, never the end of the poll.
LONG_POLL_MS = 120_000
WOKEN_DEADLINE = 30


def long_polling_consumer(bootstrap):
    """A confluent-kafka consumer whose fetches park for LONG_POLL_MS
    (librdkafka wants socket.timeout.ms above fetch.wait.max.ms)."""
    return Consumer({
        "bootstrap.servers": bootstrap, "group.id": "unused",
        "enable.auto.commit": False, "fetch.wait.max.ms": LONG_POLL_MS,
        "socket.timeout.ms": LONG_POLL_MS + 60_000,
    })


def test_long_poll_is_woken_by_sql_commit(server, unique_name):
    topic = unique_name("ck-longpoll")
    create_topic(server, topic, 1)
    consumer = long_polling_consumer(server.kafka_bootstrap)
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        # let the consumer connect and park a fetch at the end of the log
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            assert consumer.poll(0.1) is None
        server.sql("SELECT streamlog.produce(%s, 'k', 'wake up', partition => 0)", (topic,))
        msg = kh.wait_until(lambda: consumer.poll(0.05), WOKEN_DEADLINE,
                            "the record to arrive before the long poll ends")
        assert msg.error() is None and msg.value() == b"wake up"
    finally:
        consumer.close()


def test_raw_fetch_long_poll_is_woken(server, unique_name):
    topic = unique_name("raw-longpoll")
    create_topic(server, topic, 1)
    # the socket gives up long before the fetch's own wait would end
    with kh.RawClient(server.kafka_bootstrap, timeout=WOKEN_DEADLINE) as c:
        c.send(kh.fetch_request(41, topic, 0, 0, max_wait_ms=LONG_POLL_MS))
        time.sleep(0.3)
        server.sql("SELECT streamlog.produce(%s, 'k', 'raw wake', partition => 0)", (topic,))
        cid, body = c.recv_frame()
    assert cid == 41
    err, hw, records = kh.parse_fetch_v4(body)[(topic, 0)]
    assert (err, hw) == (kh.NONE, 1)
    assert b"raw wake" in records


def test_confluent_list_offsets(server, unique_name):
    topic = unique_name("ck-offsets")
    base = kh.now_ms() - 120_000
    deltas = [0, 10, 20, 30, 25, 40]
    records = [(b"k", f"v{i}".encode(), [], base + d) for i, d in enumerate(deltas)]
    ck_produce(server.kafka_bootstrap, topic, records, conf={"linger.ms": 50})

    consumer = Consumer({"bootstrap.servers": server.kafka_bootstrap, "group.id": "unused"})
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.get_watermark_offsets(tp, timeout=10) == (0, 6)
        # first offset whose timestamp is at or after the one asked for
        cases = {base - 1000: 0, base: 0, base + 10: 1, base + 15: 2, base + 22: 3,
                 base + 26: 3, base + 31: 5, base + 40: 5, base + 41: OFFSET_END}
        for ts, off in cases.items():
            [got] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert (got.error, got.offset) == (None, off), ts - base
    finally:
        consumer.close()

    # the SQL API agrees
    for ts, off in cases.items():
        sql_off = server.sql("SELECT streamlog.offset_for_time(%s, 0, %s)",
                             (topic, kh.ms_to_datetime(ts)))[0][0]
        assert sql_off == (None if off == OFFSET_END else off)


def test_kafka_python_list_offsets(server, unique_name):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition
    topic = unique_name("kp-offsets")
    base = kh.now_ms() - 120_000
    deltas = [0, 10, 20, 30, 25, 40]
    create_topic(server, topic, 2)
    sql_produce(server, topic, [(b"k", f"v{i}".encode(), [], base + d)
                                for i, d in enumerate(deltas)], partition=1)
    consumer = KafkaConsumer(bootstrap_servers=server.kafka_bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tps = [KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)]
        assert consumer.end_offsets(tps) == {tps[0]: 0, tps[1]: 6}
        assert consumer.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        tp = tps[1]
        for ts, (off, found_ts) in {base - 5: (0, base), base + 15: (2, base + 20),
                                    base + 26: (3, base + 30), base + 40: (5, base + 40)}.items():
            got = consumer.offsets_for_times({tp: ts})[tp]
            assert (got.offset, got.timestamp) == (off, found_ts), ts
        assert consumer.offsets_for_times({tp: base + 41})[tp] is None
    finally:
        consumer.close()


@pytest.mark.parametrize("acks", [1, "all"])
def test_kafka_python_round_trip(server, unique_name, acks):
    from kafka import KafkaProducer
    topic = unique_name("kp-rt")
    create_topic(server, topic, 2)
    base = kh.now_ms() - 60_000
    records = [(f"key-{i}".encode(), (f"kafka-python {i} " * 30).encode(),
                [("h", f"{i}".encode()), ("h", b"again"), ("empty", b"")] if i % 3 else [],
                base + (i * 13) % 50) for i in range(30)]
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, acks=acks,
                             compression_type="gzip", linger_ms=20)
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts,
                                 partition=i % 2)
                   for i, (k, v, h, ts) in enumerate(records)]
        producer.flush(15)
        metas = [f.get(timeout=10) for f in futures]
    finally:
        producer.close(5)
    for p in range(2):
        assert [m.offset for m in metas if m.partition == p] == list(range(15))
    assert set(kh.stored_batch_codecs(server, topic)) == {CODEC_ID["gzip"]}

    for p in range(2):
        expected = as_sql_rows(records[p::2])
        consumed = kh.kp_consume(server.kafka_bootstrap, topic, p, 15)
        assert consumed_as_sql_rows(consumed, CREATE_TIME_KP) == expected
        assert kh.sql_records(server, topic, p) == expected


def test_one_fetch_of_many_partitions_of_large_batches(server, unique_name):
    """A fetch answer made of more large batches than one sendmsg() takes
    (each is sent from where it was read, not copied): one consumer of 80
    partitions of about 10 kB each gets every record, byte for byte."""
    topic = unique_name("many-parts")
    create_topic(server, topic, 80)
    server.sql("SELECT count(streamlog.produce(%s, p::text, repeat(md5(p::text || '.' || i), 32), "
               "partition => p)) FROM generate_series(0, 79) p, generate_series(1, 10) i",
               (topic,))
    rows = server.sql('SELECT r.partition, r."offset", r.key, r.value FROM generate_series(0, 79) p, '
                      "LATERAL streamlog.read(%s, p, 0, 100) r", (topic,))
    expected = {(p, o): (bytes(k), bytes(v)) for p, o, k, v in rows}
    assert len(expected) == 800

    consumer = Consumer({"bootstrap.servers": server.kafka_bootstrap,
                         "group.id": "streamlog-tests-unused", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100})
    got = {}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(80)])
        deadline = time.monotonic() + 30
        while len(got) < 800 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert not msg.error(), msg.error()
            got[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
    finally:
        consumer.close()
    assert got == expected


# -- kafkajs ------------------------------------------------------------------------------

def test_kafkajs_producer_and_offsets(server, unique_name):
    from kafka.partitioner.default import murmur2
    node = ensure_kafkajs()
    topic = unique_name("kafkajs")
    nparts = 3
    count = 24
    create_topic(server, topic, nparts)
    res = subprocess.run([node, os.path.join(JS_DIR, "produce.js"), server.kafka_bootstrap,
                          topic, str(count)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for send in out["sent"]:
        assert all(r["errorCode"] == 0 for r in send), send

    seen = {}
    for p in range(nparts):
        for off, _ts, key, value, headers in kh.sql_records(server, topic, p):
            i = int(key.decode().split("-")[1])
            assert key == f"key-{i}".encode()
            assert value == f"value-{i}".encode()
            assert headers == [("index", str(i).encode()), ("origin", b"kafkajs")]
            # kafkajs' default partitioner is Java's murmur2, as partition_for()
            assert p == (murmur2(key) & 0x7FFFFFFF) % nparts
            assert p == server.sql("SELECT streamlog.partition_for(%s, %s::bytea)",
                                   (topic, key))[0][0]
            seen[i] = (p, off)
    assert sorted(seen) == list(range(count))

    codecs = kh.stored_batch_codecs(server, topic)
    assert CODEC_ID["gzip"] in codecs and CODEC_ID["none"] in codecs

    hws = {p: kh.high_watermark(server, topic, p) for p in range(nparts)}
    assert sum(hws.values()) == count
    assert {o["partition"]: (int(o["offset"]), int(o["high"]), int(o["low"]))
            for o in out["offsets"]} == {p: (hw, hw, 0) for p, hw in hws.items()}


# -- pipelining -----------------------------------------------------------------------------

def test_kafka_python_pipelined_version_probe(server):
    from kafka.client_async import KafkaClient
    # api_version=None: kafka-python sends ApiVersions v0 and Metadata v0
    # back to back on its bootstrap connection and needs both answers
    client = KafkaClient(bootstrap_servers=server.kafka_bootstrap,
                         api_version_auto_timeout_ms=5000)
    try:
        # Produce v8 => 2.4 in kafka-python's table; anything below 0.11
        # would make it fall back to the old message formats
        assert client.config["api_version"] >= (2, 4, 0)
    finally:
        client.close()


def test_raw_pipelined_api_versions_and_metadata_v0(server, unique_name):
    topic = unique_name("pipe0")
    create_topic(server, topic, 2)
    with kh.RawClient(server.kafka_bootstrap) as c:
        c.send(kh.api_versions_request(7001, 0) + kh.metadata_request(7002, 0, [topic]))
        cid1, body1 = c.recv_frame()
        cid2, body2 = c.recv_frame()
    assert (cid1, cid2) == (7001, 7002)
    error, keys = kh.parse_api_versions(body1, 0)
    assert error == 0 and keys[kh.METADATA][0] == 0
    # Metadata v0: brokers [id, host, port], topics [error, name, partitions]
    r = kh.Reader(body2)
    brokers = r.array(lambda r: (r.i32(), r.string(), r.i32()))
    topics = r.array(lambda r: (r.i16(), r.string(), r.array(
        lambda r: (r.i16(), r.i32(), r.i32(), r.array(lambda r: r.i32()),
                   r.array(lambda r: r.i32())))))
    assert r.at_end()
    host, port = server.kafka_bootstrap.split(":")
    assert brokers == [(1, host, int(port))]
    assert topics == [(0, topic, [(0, 0, 1, [1], [1]), (0, 1, 1, [1], [1])])]


def test_raw_five_requests_in_one_write(server, unique_name):
    topic = unique_name("pipe5")
    create_topic(server, topic, 1)
    frames = [kh.api_versions_request(100 + v, v) for v in range(4)]
    frames.append(kh.metadata_request(104, 1, [topic]))
    with kh.RawClient(server.kafka_bootstrap) as c:
        c.sock.sendall(b"".join(frames))
        responses = [c.recv_frame() for _ in range(5)]
    assert [cid for cid, _ in responses] == [100, 101, 102, 103, 104]
    for v in range(3):
        error, keys = kh.parse_api_versions(responses[v][1], v)
        assert error == 0 and keys[kh.API_VERSIONS] == (0, 3), v
    error, keys = kh.parse_api_versions_v3(responses[3][1])
    assert error == 0 and keys[kh.API_VERSIONS] == (0, 3)
    md = kh.parse_metadata_v1(responses[4][1])
    assert md["topics"][topic]["error"] == 0
    assert [p[1] for p in md["topics"][topic]["partitions"]] == [0]


def test_raw_acks0_produce_then_request_keeps_order(server, unique_name):
    topic = unique_name("acks0-order")
    create_topic(server, topic, 1)
    batch = kh.record_batch([(b"k", b"fire and forget", [], kh.now_ms())])
    with kh.RawClient(server.kafka_bootstrap) as c:
        # acks=0 gets no response: the next answer is the ApiVersions one
        c.send(kh.produce_request(1, topic, [(0, batch)], acks=0)
               + kh.api_versions_request(2, 0)
               + kh.produce_request(3, topic, [(0, batch)], acks=1))
        assert c.recv_frame()[0] == 2
        cid, body = c.recv_frame()
        assert cid == 3
        assert kh.parse_produce_v3(body)[(topic, 0)] == (kh.NONE, 1)


# -- concurrency ----------------------------------------------------------------------------

def test_producer_and_consumer_connections_progress_together(make_server, unique_name):
    # one worker, so both connections share its event loop
    srv = make_server(conf={"streamlog.broker_workers": 1})
    topic = unique_name("hol")
    other = unique_name("hol-idle")
    create_topic(srv, topic, 1)
    create_topic(srv, other, 1)

    # a fetch parked at the end of an idle topic does not hold up a
    # produce on another connection: the produce is answered within the
    # socket's timeout, long before the parked fetch's wait would end
    with kh.RawClient(srv.kafka_bootstrap, timeout=WOKEN_DEADLINE) as waiting, \
            kh.RawClient(srv.kafka_bootstrap, timeout=WOKEN_DEADLINE) as p:
        waiting.send(kh.fetch_request(1, other, 0, 0, max_wait_ms=LONG_POLL_MS))
        time.sleep(0.2)
        body = p.call(kh.produce_request, topic, [(0, kh.record_batch(
            [(b"k", b"raw", [], kh.now_ms())]))])
        assert kh.parse_produce_v3(body)[(topic, 0)] == (kh.NONE, 0)
        # the parked fetch was still waiting, and its own topic's record
        # ends its wait
        body = p.call(kh.produce_request, other, [(0, kh.record_batch(
            [(b"k", b"other", [], kh.now_ms())]))])
        assert kh.parse_produce_v3(body)[(other, 0)] == (kh.NONE, 0)
        cid, body = waiting.recv_frame()
        assert cid == 1
        err, hw, records = kh.parse_fetch_v4(body)[(other, 0)]
        assert (err, hw) == (kh.NONE, 1) and b"other" in records

    # and a parked fetch that nothing wakes gets its (empty) answer at its
    # deadline
    with kh.RawClient(srv.kafka_bootstrap, timeout=WOKEN_DEADLINE) as waiting:
        waiting.send(kh.fetch_request(2, other, 0, 1, max_wait_ms=500))
        cid, body = waiting.recv_frame()
        assert cid == 2 and kh.parse_fetch_v4(body)[(other, 0)] == (kh.NONE, 1, b"")

    # real clients: a long-polling consumer and a producer waiting for
    # each acknowledgement
    received = set()
    stop = threading.Event()
    errors = []

    def consume():
        consumer = long_polling_consumer(srv.kafka_bootstrap)
        try:
            consumer.assign([TopicPartition(topic, 0, 1)])
            while not stop.is_set():
                msg = consumer.poll(0.05)
                if msg is None:
                    continue
                if msg.error():
                    errors.append(msg.error())
                else:
                    received.add(msg.value())
        finally:
            consumer.close()

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        time.sleep(0.5)
        producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "acks": "all",
                             "linger.ms": 0})
        producer.list_topics(topic, timeout=5)     # see ck_produce()
        for i in range(30):
            value = f"m{i}".encode()
            producer.produce(topic, value=value, partition=0)
            # not behind the consumer's long poll, which would outlast this
            assert producer.flush(WOKEN_DEADLINE) == 0, f"produce {i} was held up"
            # and the consumer, parked again after each record, is woken by
            # each commit: waiting out its long poll would take far longer
            kh.wait_until(lambda: value in received, WOKEN_DEADLINE,
                          f"the consumer to see record {i}")
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert received == {f"m{i}".encode() for i in range(30)}


def test_twenty_concurrent_connections(server, unique_name):
    topic = unique_name("conc20")
    n = 20
    create_topic(server, topic, n)
    pids = kh.broker_pids(server)
    assert len(pids) == 2     # streamlog.broker_workers default
    fds_before = {pid: kh.open_fds(pid) for pid in pids}
    barrier = threading.Barrier(n + 1)
    results = [None] * n
    fds_during = {}

    def client(i):
        try:
            with kh.RawClient(server.kafka_bootstrap) as c:
                error, _ = kh.parse_api_versions(c.call(kh.api_versions_request, 0), 0)
                assert error == 0
                md = kh.parse_metadata_v1(c.call(kh.metadata_request, 1, [topic]))
                assert len(md["topics"][topic]["partitions"]) == n
                barrier.wait(10)     # all connected at once
                barrier.wait(10)     # fds counted
                for j in range(5):
                    batch = kh.record_batch(
                        [(f"c{i}".encode(), f"r{j}".encode(), [], kh.now_ms())])
                    err, base = kh.parse_produce_v3(
                        c.call(kh.produce_request, topic, [(i, batch)]))[(topic, i)]
                    assert (err, base) == (0, j)
                err, hw, records = kh.parse_fetch_v4(
                    c.call(kh.fetch_request, topic, i, 0))[(topic, i)]
                assert (err, hw) == (0, 5) and records.count(f"c{i}".encode()) == 5
            results[i] = "ok"
        except Exception as e:  # reported below
            results[i] = repr(e)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait(20)
        fds_during.update({pid: kh.open_fds(pid) for pid in pids})
        barrier.wait(20)
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(30)
    assert results == ["ok"] * n
    # both workers took some of the connections
    grew = {pid: fds_during.get(pid, 0) - fds_before[pid] for pid in pids}
    assert sum(grew.values()) >= n and all(g > 0 for g in grew.values()), grew
    assert [kh.high_watermark(server, topic, p) for p in range(n)] == [5] * n


def test_log_append_time_topic(server, unique_name):
    """message.timestamp.type=LogAppendTime: the broker's time replaces the
    producer's, for Kafka consumers (timestamp type 2) and for SQL alike."""
    import confluent_kafka

    topic = unique_name("logappend")
    server.sql("SELECT streamlog.create_topic(%s, 1, %s)",
               (topic, '{"message.timestamp.type": "LogAppendTime"}'))
    producer_ts = 1_000_000_000_000  # 2001
    before = kh.now_ms()
    p = confluent_kafka.Producer({"bootstrap.servers": server.kafka_bootstrap})
    for i in range(5):
        p.produce(topic, value=b"v%d" % i, partition=0, timestamp=producer_ts)
    assert p.flush(20) == 0
    after = kh.now_ms()
    got = kh.ck_consume(server.kafka_bootstrap, topic, 0, 5)
    for _off, _key, _value, _headers, (ts_type, ts) in got:
        assert ts_type == confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000
    for _off, ts, _k, _v, _h in kh.sql_records(server, topic, 0):
        assert before - 1000 <= ts <= after + 1000
