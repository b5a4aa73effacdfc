"""Helpers for the Kafka client tests: a raw-socket Kafka client that builds
requests by hand (so tests can send exactly the bytes they mean, including
broken ones), a RecordBatch v2 encoder with its CRC-32C, response parsers for
the versions the tests use, and small utilities (polling with deadlines,
kcat, server health checks).

Only the request and response versions the tests need are implemented; the
layouts follow Kafka's message schemas (clients/src/main/resources/common/
message/*.json).
"""

import os
import re
import socket
import struct
import subprocess
import time

import pytest
from kafka_primitives import crc32c, i8, i16, i32, i64, uvarint, varint  # noqa: F401
from pgserver import wait_until  # noqa: F401  (kh.wait_until)

KCAT = "/usr/bin/kcat"

# API keys
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
FIND_COORDINATOR = 10
API_VERSIONS = 18
INIT_PRODUCER_ID = 22

API_NAMES = {PRODUCE: "Produce", FETCH: "Fetch", LIST_OFFSETS: "ListOffsets",
             METADATA: "Metadata", FIND_COORDINATOR: "FindCoordinator",
             API_VERSIONS: "ApiVersions"}

# Error codes
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
KAFKA_STORAGE_ERROR = 56

# RecordBatch attributes: compression codec in the low 3 bits
COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
BATCH_TRANSACTIONAL = 0x10
BATCH_CONTROL = 0x20


# -- polling ------------------------------------------------------------------


# -- primitive encoders ---------------------------------------------------------
# (fixed-width integers, varints and CRC-32C: kafka_primitives, shared with
# the fuzz corpus writer)

def string(s):
    """Kafka STRING / NULLABLE_STRING (None = null)."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else bytes(s)
    return i16(len(b)) + b


def kbytes(b):
    """Kafka BYTES / NULLABLE_BYTES (None = null)."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + bytes(b)


def array(items, encode):
    """Kafka ARRAY (None = null)."""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(encode(x) for x in items)


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


# -- RecordBatch v2 ---------------------------------------------------------------

def encode_record(offset_delta, timestamp_delta, key, value, headers=()):
    """One record of a v2 batch (without the batch around it)."""
    body = i8(0) + varint(timestamp_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode() if isinstance(hk, str) else hk
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_timestamp=None, compression=COMPRESSION_NONE,
                 base_offset=0, corrupt_crc=False, producer=(-1, -1, -1), attributes=0):
    """A RecordBatch v2 holding records = [(key, value, headers, ts_ms), ...].

    compression: COMPRESSION_NONE or COMPRESSION_GZIP (the records section
    is then gzip-compressed, as Kafka does).  corrupt_crc=True stores a CRC
    that does not match.  producer: (producer id, epoch, base sequence) of
    an idempotent producer.  attributes: bits set besides the compression
    (BATCH_TRANSACTIONAL, BATCH_CONTROL)."""
    if base_timestamp is None:
        base_timestamp = records[0][3]
    max_ts = max(r[3] for r in records)
    recs = b"".join(
        encode_record(i, ts - base_timestamp, k, v, h)
        for i, (k, v, h, ts) in enumerate(records))
    if compression == COMPRESSION_GZIP:
        import gzip
        recs = gzip.compress(recs)
    elif compression != COMPRESSION_NONE:
        raise ValueError("only none and gzip are implemented here")
    after_crc = (i16(compression | attributes) + i32(len(records) - 1) + i64(base_timestamp)
                 + i64(max_ts) + i64(producer[0]) + i16(producer[1]) + i32(producer[2])
                 + i32(len(records))
                 + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0x5A5A5A5A
    after_length = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(base_offset) + i32(len(after_length)) + after_length


# -- requests ----------------------------------------------------------------------

def request_frame(api_key, version, correlation_id, body, client_id="raw-test",
                  header_version=1):
    """A size-prefixed request.  header_version 1: classic header; 2: with
    (empty) tagged fields, as flexible versions use."""
    header = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id)
    if header_version >= 2:
        header += uvarint(0)
    payload = header + body
    return i32(len(payload)) + payload


def api_versions_body(version):
    if version >= 3:
        return compact_string("streamlog-raw-test") + compact_string("1.0") + uvarint(0)
    return b""


def api_versions_request(correlation_id, version):
    return request_frame(API_VERSIONS, version, correlation_id, api_versions_body(version),
                         header_version=2 if version >= 3 else 1)


def metadata_request(correlation_id, version, topics):
    """Metadata v0-v3 (non-flexible, no auto-create flag)."""
    assert version <= 3
    if version == 0:
        body = array(topics or [], string)
    else:
        body = array(topics, string)
    return request_frame(METADATA, version, correlation_id, body)


def produce_request(correlation_id, topic, partitions, acks=-1, timeout_ms=10000):
    """Produce v3: partitions = [(partition, records_bytes), ...]."""
    body = string(None) + i16(acks) + i32(timeout_ms)
    body += array([topic], lambda t: string(t) + array(
        partitions, lambda p: i32(p[0]) + kbytes(p[1])))
    return request_frame(PRODUCE, 3, correlation_id, body)


def produce_v8_request(correlation_id, topic, partition, records):
    """Produce v8 (the first version with error messages), one partition."""
    body = string(None) + i16(-1) + i32(10000)
    body += array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + kbytes(records)))
    return request_frame(PRODUCE, 8, correlation_id, body)


def parse_produce_v8(body):
    """{(topic, partition): (error_code, base_offset, error_message)}"""
    r = Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
            r.array(lambda r: (r.i32(), r.string())), r.string())))):
        for p, err, base, _append_time, _log_start, _record_errors, message in parts:
            out[(topic, p)] = (err, base, message)
    r.i32()  # throttle_time_ms
    return out


def fetch_request(correlation_id, topic, partition, offset, max_wait_ms=0, min_bytes=1,
                  max_bytes=50 * 1024 * 1024, partition_max_bytes=10 * 1024 * 1024):
    """Fetch v4, one partition, read_uncommitted."""
    body = i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
    body += array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + i64(offset) + i32(partition_max_bytes)))
    return request_frame(FETCH, 4, correlation_id, body)


def init_producer_id_request(correlation_id, version=0, producer_id=-1, epoch=-1):
    """InitProducerId v0 or v1 (no transactional id); v3 adds the producer
    id and epoch to bump (flexible, header v2)."""
    if version >= 2:
        body = uvarint(0) + i32(60000) + i64(producer_id) + i16(epoch) + uvarint(0)
        return request_frame(INIT_PRODUCER_ID, version, correlation_id, body,
                             header_version=2)
    return request_frame(INIT_PRODUCER_ID, version, correlation_id, string(None) + i32(60000))


def parse_init_producer_id(body, version=0):
    """(error_code, producer_id, epoch)"""
    r = Reader(body)
    if version >= 2:
        r.uvarint()  # the response header's tagged fields (header v1)
    r.i32()  # throttle_time_ms
    return r.i16(), r.i64(), r.i16()


def list_offsets_request(correlation_id, topic, partition, timestamp):
    """ListOffsets v1."""
    body = i32(-1) + array([topic], lambda t: string(t) + array(
        [partition], lambda p: i32(p) + i64(timestamp)))
    return request_frame(LIST_OFFSETS, 1, correlation_id, body)


# -- response parsing ----------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"response truncated at {self.pos} (+{n} of {len(self.data)})")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, decode):
        n = self.i32()
        return None if n < 0 else [decode(self) for _ in range(n)]

    def uvarint(self):
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def at_end(self):
        return self.pos == len(self.data)


def parse_api_versions(body, version):
    """(error_code, {api_key: (min, max)}) of an ApiVersions v0-v2 body."""
    r = Reader(body)
    error = r.i16()
    keys = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    if version >= 1:
        r.i32()  # throttle_time_ms
    return error, {k: (lo, hi) for k, lo, hi in keys}


def parse_api_versions_v3(body):
    r = Reader(body)
    error = r.i16()
    n = r.uvarint() - 1
    keys = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        r.uvarint()  # tagged fields
        keys[k] = (lo, hi)
    return error, keys


def parse_metadata_v1(body):
    r = Reader(body)
    brokers = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    controller = r.i32()
    topics = r.array(lambda r: (
        r.i16(), r.string(), r.i8(),
        r.array(lambda r: (r.i16(), r.i32(), r.i32(),
                           r.array(lambda r: r.i32()), r.array(lambda r: r.i32())))))
    return {"brokers": brokers, "controller": controller,
            "topics": {name: {"error": err, "partitions": parts}
                       for err, name, _internal, parts in topics}}


def parse_produce_v3(body):
    """{(topic, partition): (error_code, base_offset)}"""
    r = Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64())))):
        for p, err, base, _append_time in parts:
            out[(topic, p)] = (err, base)
    r.i32()  # throttle_time_ms
    return out


def parse_fetch_v4(body):
    """{(topic, partition): (error_code, high_watermark, records_bytes)}"""
    r = Reader(body)
    r.i32()  # throttle_time_ms
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(),
            r.array(lambda r: (r.i64(), r.i64())), r.bytes())))):
        for p, err, hw, _lso, _aborted, records in parts:
            out[(topic, p)] = (err, hw, records or b"")
    return out


def parse_list_offsets_v1(body):
    """{(topic, partition): (error_code, timestamp, offset)}"""
    r = Reader(body)
    out = {}
    for topic, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64())))):
        for p, err, ts, off in parts:
            out[(topic, p)] = (err, ts, off)
    return out


# -- a raw connection -----------------------------------------------------------------

class RawClient:
    """A blocking socket speaking size-prefixed frames, nothing more."""

    def __init__(self, bootstrap, timeout=10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._correlation = 0

    @property
    def local_address(self):
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def next_correlation_id(self):
        self._correlation += 1
        return self._correlation

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(
                    f"connection closed by the broker after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """(correlation_id, body) of the next response (header v0)."""
        size = struct.unpack(">i", self._recv_exact(4))[0]
        payload = self._recv_exact(size)
        return struct.unpack(">i", payload[:4])[0], payload[4:]

    def call(self, frame_builder, *args, **kwargs):
        """Send one request built by frame_builder(correlation_id, ...) and
        return the body of its response, checking the correlation id."""
        cid = self.next_correlation_id()
        self.send(frame_builder(cid, *args, **kwargs))
        got, body = self.recv_frame()
        assert got == cid, f"correlation id {got}, expected {cid}"
        return body

    def wait_closed(self, timeout=30.0):
        """True if the broker closes the connection (EOF or reset) within
        timeout; whatever it sends first is ignored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the server -----------------------------------------------------------------------

def broker_pids(server):
    """PIDs of the server's broker workers."""
    return sorted(r[0] for r in server.sql(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'streamlog broker'"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    """Open sockets of a process: relation files come and go with what the
    worker reads, client connections are what the tests count."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # closed meanwhile
    return count


def log_since(server, offset):
    return server.log_text()[offset:]


def wait_log(server, offset, pattern, timeout=30.0):
    """Wait for a log line matching regex pattern after offset; return it."""
    rx = re.compile(pattern)

    def find():
        for line in log_since(server, offset).splitlines():
            if rx.search(line):
                return line
        return None
    return wait_until(find, timeout, f"a server log line matching {pattern!r}")


def kcat(args, input_data=None, timeout=30):
    """Run kcat; returns CompletedProcess (bytes), failing the test on a
    non-zero exit."""
    res = subprocess.run([KCAT] + list(args), input=input_data, capture_output=True,
                         timeout=timeout)
    if res.returncode != 0:
        pytest.fail(f"kcat {' '.join(args)} exited with {res.returncode}: "
                    f"{res.stderr.decode(errors='replace')}")
    return res


def assert_server_healthy(server, topic=None):
    """The server answers SQL, its broker serves a real client, and no
    backend died of a signal."""
    assert server.sql("SELECT 1") == [(1,)]
    args = ["-b", server.kafka_bootstrap, "-L", "-J", "-m", "10"]
    if topic:
        args += ["-t", topic]
    out = kcat(args).stdout
    assert b'"brokers"' in out, out
    if topic:
        assert topic.encode() in out
    log = server.log_text()
    assert "terminated by signal" not in log, \
        [line for line in log.splitlines() if "terminated by signal" in line]
    assert "was terminated by exception" not in log


def sql_records(server, topic, partition, from_offset=0, max_records=100000):
    """[(offset, ts_ms, key, value, [(hkey, hvalue), ...]), ...] via streamlog.read."""
    rows = server.sql(
        'SELECT r."offset", (extract(epoch FROM r.ts) * 1000)::bigint, r.key, r.value, '
        "       h.ord, h.key, h.value "
        "  FROM streamlog.read(%s, %s, %s, %s) r "
        "  LEFT JOIN LATERAL unnest(r.headers) WITH ORDINALITY AS h(key, value, ord) ON true "
        ' ORDER BY r."offset", h.ord',
        (topic, partition, from_offset, max_records))
    out = []
    for off, ts, k, v, ord_, hk, hv in rows:
        if not out or out[-1][0] != off:
            out.append((off, ts, None if k is None else bytes(k),
                        None if v is None else bytes(v), []))
        if ord_ is not None:
            out[-1][4].append((hk, None if hv is None else bytes(hv)))
    return out


def high_watermark(server, topic, partition=0):
    rows = server.sql(
        "SELECT high_watermark FROM streamlog.partitions WHERE topic = %s AND partition = %s",
        (topic, partition))
    return rows[0][0] if rows else None


def stored_batch_codecs(server, topic):
    """Compression codec (attributes & 7) of every stored batch of a topic,
    in partition and offset order."""
    segments = server.sql(
        "SELECT g.relid::text FROM streamlog.segment g JOIN streamlog.topic t USING (topic_id) "
        " WHERE t.name = %s ORDER BY g.partition, g.seq", (topic,))
    codecs = []
    for (relid,) in segments:
        codecs += [r[0] for r in server.sql(
            f"SELECT get_byte(batch, 22) & 7 FROM {relid} ORDER BY base_offset")]
    return codecs


def advertised_versions(bootstrap):
    """{api_key: (min, max)} from an ApiVersions v0 request."""
    with RawClient(bootstrap) as c:
        error, keys = parse_api_versions(c.call(api_versions_request, 0), 0)
    assert error == NONE
    return keys


def ms_to_datetime(ms):
    import datetime
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(milliseconds=ms)


def now_ms():
    return int(time.time() * 1000)


# -- real clients -----------------------------------------------------------------------

def ck_headers(msg):
    """Headers of a confluent-kafka Message as a list ([] for none).

    confluent-kafka 1.7.0 builds the header tuples without taking a
    reference to None for null header values
    (confluentinc/confluent-kafka-python#1191): every such value costs
    Py_None a reference, and the interpreter aborts with "deallocating
    None" at exit.  Give the missing references back.
    """
    import ctypes
    import sys
    before = sys.getrefcount(None)
    headers = msg.headers()
    after = sys.getrefcount(None)
    if headers is None:
        return []
    missing = sum(1 for _, v in headers if v is None) - (after - before)
    for _ in range(max(0, missing)):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return [(k, v) for k, v in headers]


def ck_consume(bootstrap, topic, partition, count, offset=0, timeout=20.0, conf=None):
    """count messages from topic/partition starting at offset, read by a
    confluent-kafka Consumer with manual assignment, as
    [(offset, key, value, headers, (ts_type, ts_ms)), ...]."""
    from confluent_kafka import Consumer, TopicPartition
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "streamlog-tests-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    }
    settings.update(conf or {})
    consumer = Consumer(settings)
    out = []
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"confluent-kafka consumed {len(out)} of {count} messages "
                            f"from {topic}[{partition}] in {timeout}s")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                pytest.fail(f"confluent-kafka consumer error: {msg.error()}")
            out.append((msg.offset(), msg.key(), msg.value(), ck_headers(msg), msg.timestamp()))
    finally:
        consumer.close()
    return out


def kp_consume(bootstrap, topic, partition, count, offset=0, timeout=20.0, **conf):
    """Like ck_consume, with a kafka-python KafkaConsumer:
    [(offset, key, value, headers, (ts_type, ts_ms)), ...]."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             request_timeout_ms=15000, **conf)
    out = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"kafka-python consumed {len(out)} of {count} messages "
                            f"from {topic}[{partition}] in {timeout}s")
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    out.append((r.offset, r.key, r.value, [(k, v) for k, v in r.headers],
                                (r.timestamp_type, r.timestamp)))
    finally:
        consumer.close()
    return out


def admin_results(futures, timeout):
    """{key: None or the KafkaError of the future}, for the futures an
    AdminClient call returns."""
    from confluent_kafka import KafkaException

    out = {}
    for key, f in futures.items():
        try:
            f.result(timeout=timeout)
            out[key] = None
        except KafkaException as e:
            out[key] = e.args[0]
    return out


def read_values(bootstrap, topic, partition, isolation, expect, timeout=90.0):
    """Values of topic[partition] from its start, read by a librdkafka
    consumer with the given isolation level, once expect of them were read
    and the end was reached."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "fetch.wait.max.ms": 100, "enable.partition.eof": True})
    values = []
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"read {values}, wanted {expect}"
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == msg.error()._PARTITION_EOF and len(values) >= expect:
                    return values
                continue
            values.append(msg.value().decode())
    finally:
        c.close()
