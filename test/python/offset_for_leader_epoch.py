"""OffsetForLeaderEpoch (api key 23) spoken raw, v0 to v4: no client we
have sends it on demand (kafka-python 2.0 has no class for it)."""

import kafka_helpers as kh
from kafka_primitives import i16, i32, uvarint

OFFSET_FOR_LEADER_EPOCH = 23


def request(correlation_id, version, topics, replica_id=-1):
    """topics: {name: [(partition, current_leader_epoch, leader_epoch)]}"""
    flexible = version >= 4

    def arr(items, enc):
        items = list(items)
        head = uvarint(len(items) + 1) if flexible else i32(len(items))
        return head + b"".join(enc(x) for x in items)

    def part(p):
        partition, current, epoch = p
        body = i32(partition) + (i32(current) if version >= 2 else b"") + i32(epoch)
        return body + (uvarint(0) if flexible else b"")

    def topic(t):
        name, parts = t
        head = kh.compact_string(name) if flexible else kh.string(name)
        return head + arr(parts, part) + (uvarint(0) if flexible else b"")

    body = i32(replica_id) if version >= 3 else b""
    body += arr(topics.items(), topic) + (uvarint(0) if flexible else b"")
    return kh.request_frame(OFFSET_FOR_LEADER_EPOCH, version, correlation_id, body,
                            header_version=2 if flexible else 1)


def parse(body, version):
    """{(topic, partition): (error_code, leader_epoch, end_offset)}; the
    epoch is None in v0, which has none"""
    flexible = version >= 4
    r = kh.Reader(body)
    if flexible:
        r.uvarint()                     # response header tagged fields
    if version >= 2:
        r.i32()                         # throttle_time_ms

    def count():
        return r.uvarint() - 1 if flexible else r.i32()

    def name():
        if flexible:
            return r.take(r.uvarint() - 1).decode()
        return r.string()

    out = {}
    for _ in range(count()):
        topic = name()
        for _ in range(count()):
            err = r.i16()
            partition = r.i32()
            epoch = r.i32() if version >= 1 else None
            end = r.i64()
            if flexible:
                r.uvarint()
            out[(topic, partition)] = (err, epoch, end)
        if flexible:
            r.uvarint()
    return out


def ask(client, version, topics, replica_id=-1):
    return parse(client.call(request, version, topics, replica_id), version)
