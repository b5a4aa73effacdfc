"""Helpers of the replication stream tests: the output plugin's messages
(src/include/streamlog/replication/stream_message.h) decoded in Python,
and a partition's stored batches read from a node, to compare replicas
byte for byte."""

import struct

from cluster import replication_settings

BATCH = ord("B")
COMMIT = ord("C")
VERSION = 1
BATCH_HEADER = struct.Struct(">BBiiqqiqi")
COMMIT_MSG = struct.Struct(">BBqqq")

# A node of a cluster replicates partitions by logical decoding
REPLICATION_CONF = replication_settings()


def decode(data):
    """One plugin message: ("B", topic_id, partition, base_offset,
    last_offset, leader_epoch, append_time, batch bytes) or ("C",
    commit_lsn, end_lsn, commit_time)."""
    data = bytes(data)
    if data[0] == BATCH:
        (_, version, topic_id, partition, base, last, epoch, append_time,
         n) = BATCH_HEADER.unpack_from(data)
        assert version == VERSION
        batch = data[BATCH_HEADER.size:]
        assert len(batch) == n, (len(batch), n)
        return ("B", topic_id, partition, base, last, epoch, append_time, batch)
    if data[0] == COMMIT:
        _, version, commit_lsn, end_lsn, commit_time = COMMIT_MSG.unpack(data)
        assert version == VERSION
        return ("C", commit_lsn, end_lsn, commit_time)
    raise AssertionError(f"unknown message type {data[0]}")


def topic_id(node, topic):
    rows = node.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (topic,))
    return rows[0][0] if rows else None


def stored_batches(node, topic, partition=0):
    """{base_offset: batch bytes} of a partition as node stores it, chunks
    put together, segments in order."""
    relids = node.sql(
        "SELECT g.relid::regclass::text FROM streamlog.segment g "
        "JOIN streamlog.topic t USING (topic_id) "
        "WHERE t.name = %s AND g.partition = %s ORDER BY g.seq", (topic, partition))
    out = {}
    for (rel,) in relids:
        for base, data in node.sql(
                f"SELECT base_offset, string_agg(batch, ''::bytea ORDER BY chunk) "
                f"FROM {rel} GROUP BY base_offset ORDER BY base_offset"):
            out[base] = bytes(data)
    return out


def batch_epoch(batch):
    """The partitionLeaderEpoch stored in a RecordBatch v2."""
    return struct.unpack_from(">i", batch, 12)[0]


def create_topic_with_assignment(node, name, assignment, timeout_ms=30000):
    """CreateTopics v2 with a manual replica assignment ({partition:
    [node ids]}, the first the preferred leader), sent to node; returns
    (error_code, error_message)."""
    import kafka_helpers as kh

    def encode_assignment(item):
        partition, replicas = item
        return kh.i32(partition) + kh.array(replicas, kh.i32)

    body = kh.array([name], lambda t: kh.string(t) + kh.i32(-1) + kh.i16(-1)
                    + kh.array(sorted(assignment.items()), encode_assignment)
                    + kh.i32(0))
    body += kh.i32(timeout_ms) + kh.i8(0)
    with kh.RawClient(node.kafka_bootstrap, timeout=timeout_ms / 1000 + 30) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(19, 2, cid, body)))
    r.i32()  # throttle_time_ms
    [(topic, error, message)] = r.array(lambda r: (r.string(), r.i16(), r.string()))
    assert topic == name
    return error, message


def wait_replicas_identical(cluster, topic, partition, node_ids, deadline=90, min_batches=1):
    """Wait until every given node stores the same batches, byte for byte,
    at the same offsets (at least min_batches of them); return them."""
    def same():
        logs = [stored_batches(cluster.node(i), topic, partition) for i in node_ids]
        first = logs[0]
        if len(first) < min_batches or any(log != first for log in logs[1:]):
            return None
        return first
    return cluster.wait_for(same, deadline,
                            f"partition {partition} of {topic} identical on nodes {node_ids}",
                            interval=0.5)
