"""Kafka loads of fixed requests, for measuring what the broker spends per
record: the same Produce request (one RecordBatch v2 of a fixed number of
records for each partition) sent again and again, and Fetch requests of a
fixed size reading them back.

A real client (librdkafka) batches as the moment allows: on a loaded
machine its requests carry fewer or more records from one run to the next,
and the broker's CPU time per record follows.  Requests that are the same
in every run leave only the machine's own noise in that figure.

One request at a time on one connection: the broker does the same work for
each, and the client's own speed does not matter (only the broker's CPU
time is measured).  The wire format follows Kafka's message schemas:
Produce v3 and Fetch v4, the first versions with RecordBatch v2.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "test", "python"))
from kafka_primitives import crc32c, i8, i16, i32, i64, varint  # noqa: E402

PRODUCE = 0
FETCH = 1
METADATA = 3


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def frame(api_key, version, body, correlation_id=1, client_id="mbench"):
    payload = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id) + body
    return i32(len(payload)) + payload


def record_batch(records, size):
    """A RecordBatch v2 of `records` records with values of `size` bytes,
    no key, no headers, timestamp now (offsets are the broker's to give)"""
    now = int(time.time() * 1000)
    value = b"x" * size
    recs = b""
    for i in range(records):
        body = i8(0) + varint(0) + varint(i) + varint(-1) + varint(size) + value + varint(0)
        recs += varint(len(body)) + body
    after_crc = (i16(0) + i32(records - 1) + i64(now) + i64(now) + i64(-1) + i16(-1) + i32(-1)
                 + i32(records) + recs)
    after_length = i32(0) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


def produce_frame(topic, partitions, records, size, acks=-1):
    """Produce v3: the same batch for each of the partitions"""
    batch = record_batch(records, size)
    parts = b"".join(i32(p) + i32(len(batch)) + batch for p in range(partitions))
    body = string(None) + i16(acks) + i32(30000) + i32(1) + string(topic) + i32(partitions) + parts
    return frame(PRODUCE, 3, body)


def fetch_frame(topic, offsets, partition_max_bytes):
    """Fetch v4, read_uncommitted, no wait: offsets[p] for each partition p"""
    body = i32(-1) + i32(0) + i32(1) + i32(64 * 1024 * 1024) + i8(0)
    body += i32(1) + string(topic) + i32(len(offsets))
    for p, off in enumerate(offsets):
        body += i32(p) + i64(off) + i32(partition_max_bytes)
    return frame(FETCH, 4, body)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def skip_string(self):
        n = self.take(">h")
        self.pos += max(n, 0)

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return b""
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b


def next_offset(records, offset):
    """The offset after the last whole batch of a Fetch answer's records
    (a batch cut short at the size limit is left for the next request)"""
    pos = 0
    while len(records) - pos >= 27:
        base, length = struct.unpack_from(">qi", records, pos)
        if len(records) - pos - 12 < length:
            break
        last_delta = struct.unpack_from(">i", records, pos + 23)[0]
        offset = base + last_delta + 1
        pos += 12 + length
    return offset


class Connection:
    def __init__(self, brokers):
        host, port = brokers.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        self.sock.close()

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            buf += chunk
        return bytes(buf)

    def call(self, request):
        """The body of the answer to request (header v0: correlation id)"""
        self.sock.sendall(request)
        size = struct.unpack(">i", self.recv_exact(4))[0]
        return self.recv_exact(size)[4:]


def produce(brokers, topic, partitions, records, size, requests):
    """Send the same Produce request (partitions x a batch of records)
    `requests` times; raises on an error code"""
    request = produce_frame(topic, partitions, records, size)
    conn = Connection(brokers)
    try:
        for _ in range(requests):
            r = Reader(conn.call(request))
            for _ in range(r.take(">i")):
                r.skip_string()
                for _ in range(r.take(">i")):
                    p = r.take(">i")
                    err = r.take(">h")
                    r.take(">q")
                    r.take(">q")
                    if err != 0:
                        raise RuntimeError(f"Produce to {topic}/{p}: error {err}")
    finally:
        conn.close()
    return requests


def fetch(brokers, topic, partitions, end, partition_max_bytes):
    """Fetch every partition from 0 to end; returns the requests it took"""
    offsets = [0] * partitions
    conn = Connection(brokers)
    requests = 0
    try:
        while min(offsets) < end:
            r = Reader(conn.call(fetch_frame(topic, offsets, partition_max_bytes)))
            requests += 1
            r.take(">i")            # throttle_time_ms
            for _ in range(r.take(">i")):
                r.skip_string()
                for _ in range(r.take(">i")):
                    p = r.take(">i")
                    err = r.take(">h")
                    r.take(">q")    # high watermark
                    r.take(">q")    # last stable offset
                    aborted = r.take(">i")
                    r.pos += max(aborted, 0) * 16
                    records = r.bytes()
                    if err != 0:
                        raise RuntimeError(f"Fetch from {topic}/{p}: error {err}")
                    offsets[p] = next_offset(records, offsets[p])
            if requests > 100 * end:
                raise RuntimeError(f"Fetch from {topic}: no progress at {offsets}")
    finally:
        conn.close()
    return requests


def metadata(brokers, topic, requests):
    """Send the same Metadata v1 request for topic `requests` times (an
    API whose answers the counters read back for their error codes)"""
    request = frame(METADATA, 1, i32(1) + string(topic))
    conn = Connection(brokers)
    try:
        for _ in range(requests):
            conn.call(request)
    finally:
        conn.close()
    return requests
