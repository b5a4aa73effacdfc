"""Hostile and broken input on the Kafka listener, sent over raw sockets.

Whatever a client sends, the broker must close only that client's
connection (saying why in the log) or answer with a Kafka error code, and
go on serving everyone else: after each test the server still answers SQL,
serves kcat, and no backend died (no "terminated by signal", same broker
worker processes).
"""

import json
import random
import re
import socket
import struct
import time

import pytest

import kafka_helpers as kh
from pgserver import PgServer


HEALTH_TOPIC = "bad-input-health"


@pytest.fixture
def checked(server):
    """The session server, checked after the test for a crashed backend or
    a restarted broker worker, and for a working kcat round trip."""
    if not server.sql("SELECT 1 FROM streamlog.topics WHERE topic = %s", (HEALTH_TOPIC,)):
        server.sql("SELECT streamlog.create_topic(%s, 1)", (HEALTH_TOPIC,))
    pids = kh.broker_pids(server)
    assert pids
    yield server
    assert_still_serving(server, pids)


def assert_still_serving(srv, pids):
    kh.assert_server_healthy(srv, HEALTH_TOPIC)
    assert kh.broker_pids(srv) == pids, "a broker worker was restarted"
    value = f"still serving {time.monotonic()}".encode()
    kh.kcat(["-b", srv.kafka_bootstrap, "-P", "-t", HEALTH_TOPIC, "-p", "0"],
            input_data=value + b"\n")
    out = kh.kcat(["-b", srv.kafka_bootstrap, "-C", "-t", HEALTH_TOPIC, "-p", "0",
                   "-o", "-1", "-e", "-q", "-f", "%s", "-X", "fetch.wait.max.ms=10"]).stdout
    assert out == value


def expect_closed_with_log(srv, client, log_offset, reason):
    """The broker closes client's connection and logs why (regex reason)."""
    address = client.local_address
    assert client.wait_closed(30), "the broker kept the connection open"
    return kh.wait_log(srv, log_offset,
                       rf"closing connection from {re.escape(address)}[: ].*{reason}")


def create_topic(srv, name, partitions=1, config=None):
    srv.sql("SELECT streamlog.create_topic(%s, %s, %s::jsonb)",
            (name, partitions, json.dumps(config or {})))


def max_request_size(srv):
    return int(srv.sql("SELECT setting FROM pg_settings "
                       " WHERE name = 'streamlog.max_request_size'")[0][0])


# -- framing -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_garbage_closes_connection(checked, seed):
    data = random.Random(seed).randbytes(1024)
    size = struct.unpack(">i", data[:4])[0]
    assert not 0 < size <= max_request_size(checked), "pick a seed whose prefix is out of range"
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(data)
        expect_closed_with_log(checked, c, offset, f"frame size {size} is out of range")


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_framed_garbage_closes_connection(checked, seed):
    body = random.Random(seed).randbytes(1020)
    assert struct.unpack(">h", body[:2])[0] != kh.API_VERSIONS
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.i32(len(body)) + body)
        expect_closed_with_log(checked, c, offset, ".")


@pytest.mark.parametrize("size", [0x7FFFFFFF, -1, -0x80000000, 0, "max+1"])
def test_out_of_range_size_prefix_closes_at_once(checked, size):
    if size == "max+1":
        size = max_request_size(checked) + 1
    pids = kh.broker_pids(checked)
    rss_before = {pid: kh.rss_kb(pid) for pid in pids}
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.i32(size) + b"\x00\x12\x00\x00")
        # "At once" is the reason logged: the broker judged the size prefix
        # alone.  The rest of the frame never comes, so a broker that waited
        # for it could only close on some timeout, with another reason.
        expect_closed_with_log(checked, c, offset, f"frame size {size} is out of range")
    for pid in pids:
        assert kh.rss_kb(pid) - rss_before[pid] < 32 * 1024, "the worker allocated the frame"


def test_truncated_frame_then_close(checked):
    frame = kh.metadata_request(1, 1, [HEALTH_TOPIC])
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(frame[:len(frame) // 2])
        c.sock.shutdown(socket.SHUT_WR)
        # the broker closes its side at end of input and answers nothing
        c.sock.settimeout(5)
        assert c.sock.recv(100) == b""
    with kh.RawClient(checked.kafka_bootstrap) as c:
        # same thing, but the connection is simply dropped
        c.send(kh.i32(500) + b"\x00\x03\x00\x01")


@pytest.mark.parametrize("api", ["metadata", "produce", "fetch", "list_offsets"])
def test_truncated_body_closes_with_log(checked, api):
    batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
    frame = {
        "metadata": lambda: kh.metadata_request(5, 1, [HEALTH_TOPIC, "another-topic"]),
        "produce": lambda: kh.produce_request(5, HEALTH_TOPIC, [(0, batch)]),
        "fetch": lambda: kh.fetch_request(5, HEALTH_TOPIC, 0, 0),
        "list_offsets": lambda: kh.list_offsets_request(5, HEALTH_TOPIC, 0, -1),
    }[api]()
    payload = frame[4:-7]           # header intact, body cut, size consistent
    offset = len(checked.log_text())
    hw = kh.high_watermark(checked, HEALTH_TOPIC)
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.i32(len(payload)) + payload)
        expect_closed_with_log(checked, c, offset, "malformed")
    assert kh.high_watermark(checked, HEALTH_TOPIC) == hw


def test_frame_shorter_than_header_closes_with_log(checked):
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.i32(3) + b"\x00\x03\x00")
        expect_closed_with_log(checked, c, offset, "header")


# -- APIs and versions -------------------------------------------------------------------------

def test_unsupported_api_key_closes_connection(checked):
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.request_frame(999, 0, 1, b""))
        expect_closed_with_log(checked, c, offset, "not supported")


def test_unsupported_metadata_version_closes_connection(checked):
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.request_frame(kh.METADATA, 99, 1, kh.i32(-1) + b"\x00", header_version=2))
        expect_closed_with_log(checked, c, offset, "Metadata.*v99.*not supported")


def test_api_versions_v99_answers_unsupported_version(checked):
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.request_frame(kh.API_VERSIONS, 99, 77, kh.api_versions_body(3),
                                header_version=2))
        cid, body = c.recv_frame()
        assert cid == 77
        # a v0 body: error code and the API list, nothing else
        r = kh.Reader(body)
        error = r.i16()
        keys = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
        assert r.at_end()
        assert error == kh.UNSUPPORTED_VERSION
        ranges = {k: (lo, hi) for k, lo, hi in keys}
        assert ranges[kh.API_VERSIONS] == (0, 3)
        for key in (kh.PRODUCE, kh.FETCH, kh.LIST_OFFSETS, kh.METADATA):
            assert key in ranges
        # the connection stays usable: the client retries with a version we have
        error, keys3 = kh.parse_api_versions_v3(c.call(kh.api_versions_request, 3))
        assert error == kh.NONE and keys3 == ranges


# -- produce and fetch errors -------------------------------------------------------------------

def test_produce_corrupt_crc_fails_only_its_partition(checked, unique_name):
    topic = unique_name("crc")
    create_topic(checked, topic, 2)
    now = kh.now_ms()
    bad = kh.record_batch([(b"k", b"corrupt", [], now)], corrupt_crc=True)
    good = kh.record_batch([(b"k", b"fine", [("h", b"x")], now)])
    with kh.RawClient(checked.kafka_bootstrap) as c:
        res = kh.parse_produce_v3(c.call(kh.produce_request, topic, [(0, bad), (1, good)]))
        assert res == {(topic, 0): (kh.CORRUPT_MESSAGE, -1), (topic, 1): (kh.NONE, 0)}
        # a corrupt batch after a good one in the same partition: none stored
        res = kh.parse_produce_v3(c.call(kh.produce_request, topic, [(0, good + bad)]))
        assert res == {(topic, 0): (kh.CORRUPT_MESSAGE, -1)}
    assert kh.high_watermark(checked, topic, 0) == 0
    assert [r[3] for r in kh.sql_records(checked, topic, 1)] == [b"fine"]


def test_produce_batch_over_max_message_bytes(checked, unique_name):
    topic = unique_name("toolarge")
    create_topic(checked, topic, 1, {"max.message.bytes": "1024"})
    now = kh.now_ms()
    big = kh.record_batch([(b"k", b"x" * 2000, [], now)])
    fits = kh.record_batch([(b"k", b"y" * 900, [], now)])
    assert len(big) > 1024 >= len(fits)
    with kh.RawClient(checked.kafka_bootstrap) as c:
        res = kh.parse_produce_v3(c.call(kh.produce_request, topic, [(0, big)]))
        assert res == {(topic, 0): (kh.MESSAGE_TOO_LARGE, -1)}
        assert kh.high_watermark(checked, topic) == 0
        res = kh.parse_produce_v3(c.call(kh.produce_request, topic, [(0, fits)]))
        assert res == {(topic, 0): (kh.NONE, 0)}
    assert [r[3] for r in kh.sql_records(checked, topic, 0)] == [b"y" * 900]


def test_produce_to_missing_partition(checked, unique_name):
    topic = unique_name("nopart")
    create_topic(checked, topic, 2)
    batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
    with kh.RawClient(checked.kafka_bootstrap) as c:
        res = kh.parse_produce_v3(c.call(kh.produce_request, topic, [(2, batch), (-1, batch)]))
    assert res == {(topic, 2): (kh.UNKNOWN_TOPIC_OR_PARTITION, -1),
                   (topic, -1): (kh.UNKNOWN_TOPIC_OR_PARTITION, -1)}
    assert [kh.high_watermark(checked, topic, p) for p in range(2)] == [0, 0]


def test_fetch_beyond_high_watermark(checked, unique_name):
    topic = unique_name("fetchoor")
    create_topic(checked, topic, 1)
    checked.sql("SELECT streamlog.produce(%s, 'k', 'only', partition => 0)", (topic,))
    with kh.RawClient(checked.kafka_bootstrap) as c:
        def fetch(off, partition=0):
            body = c.call(kh.fetch_request, topic, partition, off)
            return kh.parse_fetch_v4(body)[(topic, partition)]
        assert fetch(2)[:2] == (kh.OFFSET_OUT_OF_RANGE, 1)
        assert fetch(-1)[:2] == (kh.OFFSET_OUT_OF_RANGE, 1)
        assert fetch(1) == (kh.NONE, 1, b"")
        err, hw, records = fetch(0)
        assert (err, hw) == (kh.NONE, 1) and b"only" in records
        assert fetch(0, partition=1)[0] == kh.UNKNOWN_TOPIC_OR_PARTITION


def test_acks0_produce_error_closes_connection(checked, unique_name):
    topic = unique_name("acks0err")
    create_topic(checked, topic, 1)
    bad = kh.record_batch([(b"k", b"v", [], kh.now_ms())], corrupt_crc=True)
    offset = len(checked.log_text())
    with kh.RawClient(checked.kafka_bootstrap) as c:
        c.send(kh.produce_request(1, topic, [(0, bad)], acks=0))
        # the only way to tell an acks=0 producer: the broker has no idle
        # timeout, so the close and its logged reason are this produce's
        expect_closed_with_log(checked, c, offset, "an acks=0 Produce request failed")


# -- clients that misbehave at the socket level ------------------------------------------------

@pytest.fixture(scope="module")
def one_worker_server(tmp_path_factory):
    """A server with a single broker worker: every connection shares one
    event loop, so a connection that holds it up would show."""
    srv = PgServer(tmp_path_factory.getbasetemp(), conf={"streamlog.broker_workers": 1},
                   name="one-worker")
    try:
        srv.start()
        create_topic(srv, HEALTH_TOPIC, 1)
        yield srv
    finally:
        srv.cleanup()


def fill_topic(srv, topic, records=4, size=500_000):
    """A topic whose partition 0 holds records x size bytes."""
    create_topic(srv, topic, 1)
    srv.sql("SELECT streamlog.produce(%s, NULL, repeat('x', %s)::bytea, partition => 0) "
            "  FROM generate_series(1, %s)", (topic, size, records))


def stalled_connection(srv):
    """A socket with a tiny receive buffer that will never be read."""
    host, port = srv.kafka_bootstrap.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.setblocking(False)
    return s


def send_some(sock, data):
    """Send what the socket takes without blocking; returns bytes sent."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


def test_stalled_reader_does_not_hold_up_others(one_worker_server, unique_name):
    srv = one_worker_server
    [pid] = kh.broker_pids(srv)
    big = unique_name("stall-big")
    fill_topic(srv, big)
    rss_before = kh.rss_kb(pid)
    stalled = stalled_connection(srv)
    try:
        requests = b"".join(kh.fetch_request(i, big, 0, 0) for i in range(40))
        sent = send_some(stalled, requests)
        assert sent > 0
        time.sleep(0.5)

        # another client produces and consumes as if nothing happened
        topic = unique_name("stall-other")
        create_topic(srv, topic, 1)
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "acks": "all",
                             "linger.ms": 0})
        producer.list_topics(topic, timeout=5)
        for i in range(20):
            producer.produce(topic, value=f"m{i}".encode(), partition=0)
            # The stalled reader never reads, so a worker held up by it
            # would never answer: a generous deadline tells the two apart.
            assert producer.flush(30) == 0, f"produce {i} was held up"
        got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 20, timeout=10)
        assert [m[2] for m in got] == [f"m{i}".encode() for i in range(20)]
        assert_still_serving(srv, [pid])
    finally:
        stalled.close()
    # what the stalled connection held is given back once it is gone
    kh.wait_until(lambda: kh.rss_kb(pid) < rss_before + 100 * 1024, 10,
                  "the worker to release the stalled connection's memory")
    assert_still_serving(srv, [pid])


def test_stalled_reader_memory_is_bounded(one_worker_server, unique_name):
    srv = one_worker_server
    [pid] = kh.broker_pids(srv)
    big = unique_name("stall-mem")
    fill_topic(srv, big)
    limit_kb = 256 * 1024
    rss_before = kh.rss_kb(pid)
    stalled = stalled_connection(srv)
    peak = 0
    try:
        # 150 Fetch requests of 2 MB each in one write (12 kB)
        burst = b"".join(kh.fetch_request(i, big, 0, 0) for i in range(150))
        assert send_some(stalled, burst) == len(burst)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and peak <= limit_kb:
            peak = max(peak, kh.rss_kb(pid) - rss_before)
            time.sleep(0.05)
        # the worker still answers others while the stalled client waits
        assert_still_serving(srv, [pid])
    finally:
        stalled.close()
    kh.wait_until(lambda: kh.rss_kb(pid) < rss_before + 100 * 1024, 20,
                  "the worker to release the stalled connection's memory")
    assert peak <= limit_kb, \
        f"the worker grew by {peak // 1024} MB for one client that does not read"


def test_rapid_connect_and_close(one_worker_server):
    srv = one_worker_server
    [pid] = kh.broker_pids(srv)
    fds_before = kh.open_fds(pid)
    host, port = srv.kafka_bootstrap.rsplit(":", 1)
    for i in range(100):
        s = socket.create_connection((host, int(port)), timeout=5)
        if i % 5 == 0:
            # reset instead of an orderly close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if i % 3 == 0:
            s.sendall(kh.api_versions_request(i, 0)[:7])
        elif i % 3 == 1:
            s.sendall(kh.api_versions_request(i, 0))
        s.close()
    # every connection is let go, and the worker goes on serving
    kh.wait_until(lambda: kh.open_fds(pid) <= fds_before, 10,
                  "the worker to close the 100 connections")
    assert "too many connections" not in srv.log_text()
    assert_still_serving(srv, [pid])
