#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets into test/fuzz/corpus/<target>/.

    make fuzz-corpus
    test/fuzz/make_corpus.py --compress-tool test/fuzz/bin/compress_tool

Every seed is a valid input written by hand from the Kafka protocol guide:
requests (ApiVersions, Metadata, Produce with real record batches, Fetch,
ListOffsets), consumer-group subscriptions, RecordBatch v2 with each codec,
compressed blobs, legacy message sets and stored batches, and the cluster
layer's metadata record batches, image snapshots and controller requests.  Compression
goes through compress_tool (built by the Makefile from the project's own
SlCompress), so the seeds are what the codecs really read.  Output is
deterministic.

Seeds are the files named seed-*; this script rewrites them and deletes
stale ones.  Other files in the corpus (crash reproducers) are kept.
Running a target with STREAMLOG_FUZZ_EXPECT_VALID=1 on its corpus checks
that every seed is accepted whole.
"""

import argparse
import os
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- primitives ----

sys.path.insert(0, os.path.join(HERE, "..", "python"))
from kafka_primitives import crc32c, i8, i16, i32, i64, u32, uvarint, varint  # noqa: E402,F401


def string(s, compact=False):
    """Kafka string; None is null."""
    if s is None:
        return uvarint(0) if compact else i16(-1)
    b = s.encode()
    return (uvarint(len(b) + 1) if compact else i16(len(b))) + b


def kbytes(b, compact=False):
    if b is None:
        return uvarint(0) if compact else i32(-1)
    return (uvarint(len(b) + 1) if compact else i32(len(b))) + b


def array(items, compact=False):
    """items: list of already encoded elements, or None for null."""
    if items is None:
        return uvarint(0) if compact else i32(-1)
    return (uvarint(len(items) + 1) if compact else i32(len(items))) + b"".join(items)


NO_TAGS = uvarint(0)


def tagged(fields):
    """A tagged-field section from (tag, encoded value) pairs."""
    out = uvarint(len(fields))
    for tag, value in sorted(fields):
        out += uvarint(tag) + uvarint(len(value)) + value
    return out


# ---- checksums ----

def xxh32(data, seed=0):
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    m = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & m

    def rnd(acc, lane):
        return (rotl((acc + lane * p2) & m, 13) * p1) & m

    n = len(data)
    i = 0
    if n >= 16:
        v = [(seed + p1 + p2) & m, (seed + p2) & m, seed, (seed - p1) & m]
        while n - i >= 16:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[i + 4 * k:i + 4 * k + 4], "little"))
            i += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
    else:
        h = (seed + p5) & m
    h = (h + n) & m
    while n - i >= 4:
        h = (h + int.from_bytes(data[i:i + 4], "little") * p3) & m
        h = (rotl(h, 17) * p4) & m
        i += 4
    while i < n:
        h = (h + data[i] * p5) & m
        h = (rotl(h, 11) * p1) & m
        i += 1
    h ^= h >> 15
    h = (h * p2) & m
    h ^= h >> 13
    h = (h * p3) & m
    h ^= h >> 16
    return h


# ---- compression ----

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


class Compressor:
    def __init__(self, tool):
        self.tool = tool

    def __call__(self, codec, data):
        if codec == "none":
            return data
        r = subprocess.run([self.tool, codec], input=data, stdout=subprocess.PIPE,
                           check=True)
        return r.stdout


def kafka3160_lz4(frame):
    """An LZ4 frame with the header checksum computed from the magic on."""
    flg = frame[4]
    desc_len = 2 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    broken = (xxh32(frame[:4 + desc_len]) >> 8) & 0xFF
    return frame[:4 + desc_len] + bytes([broken]) + frame[5 + desc_len:]


# ---- RecordBatch v2 ----

def record(offset_delta, timestamp_delta, key, value, headers=()):
    body = i8(0) + varint(timestamp_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def batch(compress, records, base_offset=0, codec="none", base_timestamp=1700000000000,
          attributes=0, producer_id=-1, producer_epoch=-1, base_sequence=-1,
          leader_epoch=0):
    """records: list of (key, value, headers) or raw encoded records."""
    encoded = []
    for i, r in enumerate(records):
        if isinstance(r, bytes):
            encoded.append(r)
        else:
            key, value, headers = r
            encoded.append(record(i, 10 * i, key, value, headers))
    payload = compress(codec, b"".join(encoded))
    n = len(records)
    after_crc = (i16(attributes | CODECS[codec]) + i32(n - 1) + i64(base_timestamp)
                 + i64(base_timestamp + 10 * (n - 1)) + i64(producer_id)
                 + i16(producer_epoch) + i32(base_sequence) + i32(n) + payload)
    crc = crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)
    return i64(base_offset) + i32(length) + i32(leader_epoch) + i8(2) + u32(crc) + after_crc


SAMPLE_RECORDS = [
    (b"user-1", b'{"event":"signup","plan":"free"}', [(b"trace-id", b"0af7651916cd43dd")]),
    (None, b"a record without a key", []),
    (b"user-2", None, [(b"tombstone", None), (b"source", b"fuzz")]),
    (b"user-1", b'{"event":"upgrade","plan":"pro","seats":5}' * 3, []),
]


def control_batch(base_offset, commit=True):
    key = i16(0) + i16(1 if commit else 0)
    value = i16(0) + i32(0)
    return batch(lambda c, d: d, [record(0, 0, key, value)], base_offset=base_offset,
                 attributes=0x10 | 0x20, producer_id=5, producer_epoch=0)


# ---- legacy message sets ----

def message(offset, magic, key, value, attributes=0, timestamp=1700000000000):
    body = i8(magic) + i8(attributes)
    if magic == 1:
        body += i64(timestamp)
    body += kbytes(key) + kbytes(value)
    msg = u32(zlib.crc32(body)) + body
    return i64(offset) + i32(len(msg)) + msg


def message_set(magic, pairs, first_offset=0, timestamp=1700000000000):
    return b"".join(message(first_offset + i, magic, k, v, timestamp=timestamp + i)
                    for i, (k, v) in enumerate(pairs))


LEGACY_PAIRS = [
    (b"k1", b"first legacy message"),
    (None, b"second, without a key"),
    (b"k3", None),
    (b"k4", b"fourth message " * 4),
]


def wrapper(compress, magic, codec, pairs, offset, attributes=0, fix=None):
    """A compressed message holding pairs; magic 1 uses relative offsets."""
    inner = message_set(magic, pairs, first_offset=0 if magic == 1 else offset)
    value = compress(codec, inner)
    if fix:
        value = fix(value)
    last = offset + len(pairs) - 1
    return message(last, magic, None, value, attributes=CODECS[codec] | attributes)


# ---- requests ----

def request(api_key, version, body, flexible, correlation_id=1, client_id="fuzz-seed"):
    header = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id)
    if flexible:
        header += NO_TAGS
    frame = header + body
    return i32(len(frame)) + frame


def api_versions(version):
    if version >= 3:
        body = string("streamlog-fuzz", True) + string("1.0.0", True) + NO_TAGS
    else:
        body = b""
    return request(18, version, body, version >= 3)


def metadata_v1(topics):
    body = array(None if topics is None else [string(t) for t in topics])
    return request(3, 1, body, False)


def metadata_v12():
    topics = [bytes(16) + string("orders", True) + NO_TAGS,
              bytes(range(1, 17)) + string(None, True) + NO_TAGS]
    body = array(topics, True) + i8(1) + i8(0) + NO_TAGS
    return request(3, 12, body, True)


def produce(version, partitions, acks=-1, transactional_id=None):
    """partitions: list of (index, records bytes)."""
    flex = version >= 9
    parts = [i32(idx) + kbytes(recs, flex) + (NO_TAGS if flex else b"")
             for idx, recs in partitions]
    topic = string("orders", flex) + array(parts, flex) + (NO_TAGS if flex else b"")
    body = b""
    if version >= 3:
        body += string(transactional_id, flex)
    body += i16(acks) + i32(30000) + array([topic], flex)
    if flex:
        body += NO_TAGS
    return request(0, version, body, flex)


def fetch_v4():
    parts = [i32(0) + i64(0) + i32(1048576), i32(1) + i64(42) + i32(65536)]
    topic = string("orders") + array(parts)
    body = i32(-1) + i32(500) + i32(1) + i32(52428800) + i8(0) + array([topic])
    return request(1, 4, body, False)


def fetch_v13():
    part = (i32(0) + i32(-1) + i64(0) + i32(-1) + i64(-1) + i32(1048576) + NO_TAGS)
    topic = bytes(range(16)) + array([part], True) + NO_TAGS
    forgotten = bytes(range(16, 32)) + array([i32(3), i32(4)], True) + NO_TAGS
    body = (i32(-1) + i32(500) + i32(1) + i32(52428800) + i8(1) + i32(0) + i32(-1)
            + array([topic], True) + array([forgotten], True) + string("rack-a", True)
            + tagged([(0, string("cluster-1", True))]))
    return request(1, 13, body, True)


def list_offsets_v1():
    parts = [i32(0) + i64(-1), i32(1) + i64(-2), i32(2) + i64(1700000000000)]
    body = i32(-1) + array([string("orders") + array(parts)])
    return request(2, 1, body, False)


# ---- the cluster layer's formats (src/cluster/, see its .c files) ----

def u8(v):
    return bytes([v])


def u64(v):
    return i64(v - (1 << 64) if v >= 1 << 63 else v)


def mstring(s):
    """A metadata string: int32 length, -1 for none"""
    if s is None:
        return i32(-1)
    b = s.encode()
    return i32(len(b)) + b


def mints(xs):
    """An int32 array: int32 count, -1 for none"""
    if xs is None:
        return i32(-1)
    return i32(len(xs)) + b"".join(i32(x) for x in xs)


def meta_node(node_id, incarnation, rack=None):
    return (i32(node_id) + u64(incarnation) + mstring("127.0.0.1") + i32(9092 + node_id)
            + mstring("host=127.0.0.1 port=5432") + mstring("127.0.0.1:7000") + mstring(rack))


def meta_batch(records):
    """magic SLMB, format 1, count, then type + version 1 + fields each"""
    return b"SLMB" + u8(1) + u32(len(records)) + b"".join(records)


def rec(rtype, fields):
    return u8(rtype) + u8(1) + fields


UUID = bytes(range(16))


def meta_seeds():
    register = rec(1, meta_node(4, 77, "c"))
    unfence = rec(3, i32(4) + u64(77))
    topic = rec(5, i32(2) + UUID + mstring("payments") + mstring("{}") + mstring("alice"))
    part = rec(7, i32(2) + i32(0) + mints([1, 2]) + mints([1, 2]) + i32(1) + i32(0) + i32(0))
    out = {}
    out["batch_register"] = b"\0" + meta_batch([register, unfence])
    out["batch_topic"] = b"\0" + meta_batch([topic, part])
    out["batch_change"] = b"\0" + meta_batch([rec(8, i32(1) + i32(0) + i32(-2) + mints([2]))])
    out["batch_fence"] = b"\0" + meta_batch([rec(2, i32(2) + u64(2000)),
                                            rec(8, i32(1) + i32(1) + i32(-1) + mints(None))])
    out["batch_misc"] = b"\0" + meta_batch([
        rec(9, i32(1) + mstring('{"retention.ms": "1"}')),
        rec(10, i32(1) + i64(0) + i32(1000)),
        rec(11, i32(2) + u64(5)),
        rec(12, i32(3) + u64(3000)),
        rec(6, i32(1)),
        rec(4, i32(3))])
    out["batch_empty"] = b"\0" + meta_batch([])

    # an image: three nodes (one fenced, one shutting down), two topics
    nodes = [(1, 1000, "a", 0, 0), (2, 2000, "b", 1, 0), (3, 3000, None, 0, 1)]
    image = (b"SLMI" + u8(1) + u64(40) + i32(1) + u64(3) + i32(8) + i64(3000) + u64(0)
             + u32(len(nodes))
             + b"".join(meta_node(n, inc, rack) + u8(f) + u8(s) for n, inc, rack, f, s in nodes)
             + u32(2)
             + i32(1) + UUID + mstring("orders") + mstring("{}") + mstring("alice") + u32(2)
             + i32(0) + mints([1, 2]) + mints([1]) + i32(1) + i32(3) + i32(5)
             + i32(1) + mints([2]) + mints([2]) + i32(-1) + i32(1) + i32(1)
             + i32(7) + UUID + mstring("t7") + mstring(None) + mstring(None) + u32(1)
             + i32(0) + mints([3, 1]) + mints([3, 1]) + i32(1) + i32(0) + i32(0))
    out["image"] = b"\1" + image
    out["image_empty"] = (b"\1" + b"SLMI" + u8(1) + u64(0) + i32(-1) + u64(0) + i32(1)
                          + i64(0) + u64(0) + u32(0) + u32(0))

    def request(rtype, name=None, count=0, rf=0, config=None, owner=None, internal=0,
                assignments=(), elections=(), node=0, alter=(0, 0, 0, 0, []),
                election_type=0):
        """format 2: AlterPartition's topic id, partition, epochs, ISR, then
        the election type last"""
        topic_id, partition, leader_epoch, partition_epoch, isr = alter
        return (b"\2" + b"SLCR" + u8(2) + u8(rtype) + mstring(name) + i32(count) + i32(rf)
                + mstring(config) + mstring(owner) + u8(internal)
                + i32(len(assignments)) + b"".join(mints(a) for a in assignments)
                + i32(len(elections)) + b"".join(i32(t) + i32(p) for t, p in elections)
                + i32(node) + UUID + i32(topic_id) + i32(partition) + i32(leader_epoch)
                + i32(partition_epoch) + mints(isr) + u8(election_type))
    out["request_create"] = request(1, "fresh", 6, 2, "{}", "alice")
    out["request_create_manual"] = request(1, "manual", 2, -1, None, "bob",
                                           assignments=([2, 1], [3, 2]))
    out["request_delete"] = request(2, "orders")
    out["request_partitions"] = request(3, "orders", 5)
    out["request_config"] = request(4, "orders", config='{"cleanup.policy": "compact"}')
    out["request_elect"] = request(5, elections=((1, 0), (1, 2)))
    out["request_elect_all"] = request(5)
    out["request_elect_unclean"] = request(5, elections=((1, 0),), election_type=1)
    out["request_producer_ids"] = request(6, node=2)
    out["request_unregister"] = request(7, node=3)
    out["request_alter_partition"] = request(8, node=1, alter=(1, 0, 3, 5, [1, 2]))
    out["request_reassign"] = request(9, elections=((1, 0), (1, 1)),
                                      assignments=([2, 3], []))
    # a reassignment under way: PARTITION_CHANGE version 2 (replicas,
    # adding, removing), and an image at format 2 holding one
    out["batch_reassign"] = b"\0" + meta_batch([
        u8(8) + u8(2) + i32(1) + i32(0) + i32(-2) + mints(None)
        + mints([2, 3, 1]) + mints([3]) + mints([1])])
    out["image_reassign"] = (b"\1" + b"SLMI" + u8(2) + u64(40) + i32(1) + u64(3) + i32(2)
                             + i64(0) + u64(0) + u32(3)
                             + b"".join(meta_node(n, n * 10, None) + u8(0) + u8(0)
                                        for n in (1, 2, 3))
                             + u32(1)
                             + i32(1) + UUID + mstring("moving") + mstring("{}")
                             + mstring("alice") + u32(1)
                             + i32(0) + mints([2, 3, 1]) + mints([1, 2]) + i32(1) + i32(0)
                             + i32(1) + mints([3]) + mints([1]))

    # sequences: each batch a u16 length and its bytes
    def sequence(*batches):
        return b"\3" + b"".join(len(b).to_bytes(2, "big") + b for b in batches)
    b = {k: v[1:] for k, v in out.items() if k.startswith("batch_")}
    out["sequence_topic_then_fence"] = sequence(b["batch_register"], b["batch_topic"],
                                                b["batch_fence"], b["batch_change"])
    out["sequence_misc_twice"] = sequence(b["batch_misc"], b["batch_misc"], b["batch_empty"])
    return out


# ---- the corpus ----

def seeds(compress):
    out = {}
    lorem = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
             b"tempor incididunt ut labore et dolore magna aliqua. " * 12
             + bytes(range(256)) + bytes(300))

    # record batches
    rb = {}
    for codec in CODECS:
        rb["batch_" + codec] = batch(compress, SAMPLE_RECORDS, base_offset=100, codec=codec)
    rb["batch_two"] = (batch(compress, SAMPLE_RECORDS[:2], base_offset=0)
                       + batch(compress, SAMPLE_RECORDS[2:], base_offset=2, codec="gzip"))
    rb["batch_log_append_time"] = batch(compress, SAMPLE_RECORDS[:1], attributes=0x08)
    rb["batch_idempotent"] = batch(compress, SAMPLE_RECORDS, producer_id=7,
                                   producer_epoch=0, base_sequence=0)
    rb["batch_many"] = batch(compress, [(b"k%d" % i, b"v" * i, []) for i in range(40)],
                             codec="lz4")
    out["fuzz_record_batch"] = rb

    # compressed blobs
    dc = {}
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        dc[codec] = compress(codec, lorem)
        dc[codec + "_small"] = compress(codec, b"streamlog")
        dc[codec + "_empty"] = compress(codec, b"")
    dc["snappy_raw"] = compress("snappy-raw", lorem)
    dc["gzip_two_members"] = compress("gzip", b"first member ") + compress("gzip", b"second")
    dc["snappy_two_streams"] = compress("snappy", b"first stream ") + compress("snappy", b"x")
    dc["lz4_two_frames"] = compress("lz4", b"first frame ") + compress("lz4", b"second")
    dc["zstd_two_frames"] = compress("zstd", b"first frame ") + compress("zstd", b"second")
    out["fuzz_decompress"] = dc

    # legacy message sets and stored batches
    lg = {}
    lg["v0_plain"] = message_set(0, LEGACY_PAIRS[:2])
    lg["v1_plain"] = message_set(1, LEGACY_PAIRS)
    for codec in ("gzip", "snappy", "lz4"):
        lg["v1_" + codec] = wrapper(compress, 1, codec, LEGACY_PAIRS, 0)
        lg["v0_" + codec] = wrapper(compress, 0, codec, LEGACY_PAIRS, 0)
    lg["v0_lz4_kafka3160"] = wrapper(compress, 0, "lz4", LEGACY_PAIRS, 0, fix=kafka3160_lz4)
    lg["v1_log_append_time"] = wrapper(compress, 1, "gzip", LEGACY_PAIRS[:2], 0,
                                       attributes=0x08)
    lg["v1_mixed"] = (message_set(1, LEGACY_PAIRS[:1])
                      + wrapper(compress, 1, "snappy", LEGACY_PAIRS[1:], 1))
    lg["stored_none"] = batch(compress, SAMPLE_RECORDS, base_offset=100)
    lg["stored_gzip"] = batch(compress, SAMPLE_RECORDS, base_offset=100, codec="gzip")
    lg["stored_with_control"] = (batch(compress, SAMPLE_RECORDS[:2], base_offset=10,
                                       producer_id=5, producer_epoch=0, base_sequence=0,
                                       attributes=0x10)
                                 + control_batch(12)
                                 + batch(compress, SAMPLE_RECORDS[2:], base_offset=13,
                                         attributes=0x08))
    out["fuzz_legacy"] = lg

    # requests
    rq = {}
    rq["api_versions_v0"] = api_versions(0)
    rq["api_versions_v3"] = api_versions(3)
    rq["api_versions_v4"] = api_versions(4)
    rq["metadata_v1"] = metadata_v1(["orders", "payments"])
    rq["metadata_v1_all_topics"] = metadata_v1(None)
    rq["metadata_v12"] = metadata_v12()
    rq["produce_v3"] = produce(3, [(0, rb["batch_none"])])
    rq["produce_v9"] = produce(9, [(0, rb["batch_none"]), (1, rb["batch_zstd"]),
                                   (2, rb["batch_two"])])
    rq["produce_v2_message_set"] = produce(2, [(0, lg["v1_mixed"])], acks=1)
    rq["fetch_v4"] = fetch_v4()
    rq["fetch_v13"] = fetch_v13()
    rq["list_offsets_v1"] = list_offsets_v1()
    rq["two_frames"] = api_versions(3) + metadata_v12()
    out["fuzz_request"] = rq

    # JoinGroup metadata of consumer groups (ConsumerProtocolSubscription)
    cp = {}
    topics = array([string("orders"), string("payments.eu")])
    owned = array([string("orders") + array([i32(0), i32(3)])])
    cp["subscription_v0"] = i16(0) + topics + kbytes(None)
    cp["subscription_v1"] = i16(1) + topics + kbytes(b"user data") + owned
    cp["subscription_v2"] = i16(2) + topics + kbytes(None) + owned + i32(7)
    cp["subscription_v3"] = i16(3) + topics + kbytes(None) + owned + i32(7) + string("rack-a")
    cp["subscription_no_topics"] = i16(3) + array([]) + kbytes(None) + array([]) + i32(-1) \
        + string(None)
    out["fuzz_consumer_protocol"] = cp

    # SCRAM: first byte 0 client-first, 1 client-final, 2 a verifier
    nonce = b"rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    sc = {}
    sc["client_first"] = b"\0n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    sc["client_first_authzid_ext"] = b"\0n,a=us=2Cer,n=us=2Cer,r=abc,ext=1"
    sc["client_final_rfc7677"] = (b"\1c=biws,r=" + nonce +
                                  b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    sc["client_final_wrong_proof"] = (b"\1c=biws,r=" + nonce +
                                      b",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    sc["verifier_sha256"] = (b"\2SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
                             b"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
                             b"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")
    out["fuzz_scram"] = sc

    # the cluster layer: 0 a record batch, 1 an image snapshot, 2 a request,
    # 3 a sequence of batches
    out["fuzz_metadata"] = meta_seeds()

    # the replication stream: a batch message (the batch as a leader
    # stored it, stamped with its epoch) and a commit message
    def stream_batch(topic_id, partition, b, epoch, append_time):
        base = int.from_bytes(b[0:8], "big")
        last = base + int.from_bytes(b[23:27], "big")
        return (b"B\x01" + i32(topic_id) + i32(partition) + i64(base) + i64(last)
                + i32(epoch) + i64(append_time) + i32(len(b)) + b)

    sm = {}
    sm["batch_plain"] = stream_batch(1, 0, batch(compress, SAMPLE_RECORDS, base_offset=42,
                                                 leader_epoch=3), 3, 1700000000123)
    sm["batch_lz4"] = stream_batch(7, 2, batch(compress, SAMPLE_RECORDS, codec="lz4",
                                               leader_epoch=0), 0, 1700000000000)
    sm["batch_idempotent"] = stream_batch(
        2, 1, batch(compress, SAMPLE_RECORDS[:2], base_offset=1000, producer_id=77,
                    producer_epoch=1, base_sequence=5, leader_epoch=9), 9, 1)
    sm["commit"] = b"C\x01" + i64(0x16B3A28) + i64(0x16B3A60) + i64(1700000000999)
    out["fuzz_stream_message"] = sm

    # __transaction_state records: first byte 0 a key, 1 a value
    def txn_value(status, topics, start_ms):
        parts = None if topics is None else [string(t) + array([i32(p) for p in ps])
                                             for t, ps in topics]
        return (b"\1" + i16(0) + i64(4000) + i16(3) + i32(60000) + i8(status) + array(parts)
                + i64(1700000000500) + i64(start_ms))

    tl = {}
    tl["key"] = b"\0" + i16(0) + string("orders-etl-1")
    tl["value_empty"] = txn_value(0, [], -1)
    tl["value_ongoing"] = txn_value(1, [("orders", [0, 2]), ("payments.eu", [7])],
                                    1700000000000)
    tl["value_null_topics"] = txn_value(4, None, 1700000000000)
    out["fuzz_txn_log"] = tl

    # transaction markers: control batches as a leader writes them
    cr = {}
    cr["commit"] = control_batch(10, commit=True)
    cr["abort"] = control_batch(0, commit=False)
    cr["abort_then_commit"] = control_batch(5, commit=False) + control_batch(6, commit=True)
    out["fuzz_control_records"] = cr

    # the metrics endpoint's HTTP request heads: first byte 3, the largest
    # bounds (8 kB, 64 header lines)
    hr = {}
    hr["prometheus"] = (b"\3GET /metrics HTTP/1.1\r\nHost: localhost:9644\r\n"
                        b"User-Agent: Prometheus/2.42.0\r\n"
                        b"Accept: application/openmetrics-text;version=1.0.0,"
                        b"application/openmetrics-text;version=0.0.1;q=0.75,"
                        b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
                        b"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")
    hr["curl"] = (b"\3GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9644\r\n"
                  b"User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
    hr["http10-close"] = (b"\3HEAD /metrics?x=1 HTTP/1.0\nConnection: keep-alive\n"
                          b"Content-Length: 0\n\n")
    hr["pipelined"] = (b"\3\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"
                       b"GET / HTTP/1.1\r\n\r\n")
    out["fuzz_http_request"] = hr
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compress-tool", default=os.path.join(HERE, "bin", "compress_tool"),
                    help="compressor built by the Makefile (make fuzz-corpus)")
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"),
                    help="corpus directory (default: %(default)s)")
    args = ap.parse_args()
    if not os.access(args.compress_tool, os.X_OK):
        sys.exit("make_corpus.py: %s not found; run make fuzz-corpus" % args.compress_tool)

    written = 0
    for target, files in seeds(Compressor(args.compress_tool)).items():
        folder = os.path.join(args.out, target)
        os.makedirs(folder, exist_ok=True)
        wanted = {"seed-" + name for name in files}
        for old in os.listdir(folder):
            if old.startswith("seed-") and old not in wanted:
                os.remove(os.path.join(folder, old))
        for name, data in sorted(files.items()):
            with open(os.path.join(folder, "seed-" + name), "wb") as f:
                f.write(data)
            written += 1
    print("make_corpus.py: wrote %d seeds under %s" % (written, args.out))


if __name__ == "__main__":
    main()
